//! [`Ramp`]: how large the next frame of a download may be, by how much of it
//! the client has taken.
//!
//! A frame handed to the server stays in memory until the socket takes it. For
//! a client that never reads, the kernel's buffers (the send buffer, the
//! peer's receive buffer: about a megabyte on loopback with the demo's 512 KiB
//! send buffer) fill at once, and the frame the server holds then is the one
//! that stays: 2,000 such clients held 2,000 chunks. So a large download starts
//! with small frames and lets them grow only as it goes on: a frame is at most
//! a 128th of what was sent before it (8 KiB up to 1 MiB sent, 16 KiB up to
//! 2 MiB, 64 KiB from 8 MiB), from 8 KiB up to the layer's chunk size. A
//! client that has taken more than its buffers hold is reading, and gets the
//! large frames that make a long download cheap.
//!
//! A response of at most [`SMALL`] bytes goes in whole chunks from the start:
//! the kernel takes most or all of it even from a client that never reads, and
//! small frames cost it throughput (64 connections fetching a 1 MiB file: 2,484
//! MB/s in 8 KiB frames against 3,789 in 64 KiB ones, BENCHMARKS.md).

/// The smallest frame a ramp allows (and the first).
pub(crate) const START: usize = 8 * 1024;

/// Responses up to this length do not ramp: 4 MiB.
pub(crate) const SMALL: u64 = 4 << 20;

/// A download's frame-size ramp.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ramp {
    sent: u64,
}

impl Ramp {
    /// The ramp of a response of `len` bytes: none for a small one.
    pub(crate) fn for_len(len: u64) -> Self {
        Self {
            sent: if len <= SMALL { u64::MAX } else { 0 },
        }
    }

    /// The largest next frame, at most `configured`.
    pub(crate) fn max_chunk(&self, configured: usize) -> usize {
        let earned = usize::try_from(self.sent / 128).unwrap_or(usize::MAX);
        // Whole powers of two: the buffer pool's size classes.
        let earned = match earned.checked_next_power_of_two() {
            Some(power) if power == earned => power,
            Some(power) => power / 2,
            None => usize::MAX,
        };
        earned.max(START).min(configured)
    }

    /// Counts `bytes` as sent.
    pub(crate) fn sent(&mut self, bytes: usize) {
        self.sent = self.sent.saturating_add(bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    fn after(bytes: usize) -> Ramp {
        let mut ramp = Ramp::default();
        ramp.sent(bytes);
        ramp
    }

    #[test]
    fn frames_grow_with_what_was_sent() {
        assert_eq!(Ramp::default().max_chunk(64 * KIB), 8 * KIB);
        assert_eq!(after(1024 * KIB - 1).max_chunk(64 * KIB), 8 * KIB);
        assert_eq!(after(1024 * KIB).max_chunk(64 * KIB), 8 * KIB);
        assert_eq!(after(2048 * KIB).max_chunk(64 * KIB), 16 * KIB);
        assert_eq!(after(3072 * KIB).max_chunk(64 * KIB), 16 * KIB);
        assert_eq!(after(4096 * KIB).max_chunk(64 * KIB), 32 * KIB);
        assert_eq!(after(8192 * KIB).max_chunk(64 * KIB), 64 * KIB);
        assert_eq!(after(1 << 30).max_chunk(64 * KIB), 64 * KIB);
        assert_eq!(after(1 << 30).max_chunk(1024 * KIB), 1024 * KIB);
    }

    #[test]
    fn small_responses_go_in_whole_chunks() {
        assert_eq!(Ramp::for_len(SMALL).max_chunk(64 * KIB), 64 * KIB);
        assert_eq!(Ramp::for_len(SMALL + 1).max_chunk(64 * KIB), START);
        assert_eq!(Ramp::for_len(1 << 30).max_chunk(64 * KIB), START);
    }

    #[test]
    fn a_small_configured_chunk_is_never_exceeded() {
        assert_eq!(Ramp::default().max_chunk(4 * KIB), 4 * KIB);
        assert_eq!(after(1 << 30).max_chunk(1), 1);
        let mut ramp = after(usize::MAX);
        ramp.sent(usize::MAX);
        assert_eq!(ramp.max_chunk(usize::MAX), 1 << 56); // u64::MAX / 128, rounded down
    }
}
