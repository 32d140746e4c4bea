//! Recycled chunk buffers for [`FileSource`](super::FileSource).
//!
//! A chunk's buffer goes back to a pool when the server has sent it (its last
//! `Bytes` handle is dropped), so a steady download allocates nothing per chunk:
//! no zeroing of new buffers, and no allocator handing freed memory back to the
//! kernel only to fault it in again for the next chunk (with 64 connections,
//! hundreds of thousands of page faults a second; see BENCHMARKS.md).
//!
//! A buffer is only ever exposed after a read filled all of its requested
//! length, so bytes left from an earlier use never reach a client.

use std::sync::Mutex;

use bytes::Bytes;

/// The smallest pooled capacity; sizes are powers of two from it.
const MIN: usize = 4096;
/// Size classes: 4 KiB to 1 MiB.
const CLASSES: usize = 9;
/// Most bytes kept idle per size class; beyond, freed buffers go to the allocator.
const IDLE_BYTES: usize = 4 << 20;

static POOL: [Mutex<Vec<Vec<u8>>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

/// The class whose buffers hold `len` bytes, if it is pooled.
fn class(len: usize) -> Option<usize> {
    let capacity = len.max(MIN).checked_next_power_of_two()?;
    let class = (capacity / MIN).trailing_zeros() as usize;
    (class < CLASSES).then_some(class)
}

fn pool(class: usize) -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    POOL[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer for one chunk of `len` bytes, from the pool when one is free.
pub(crate) struct Buffer {
    buf: Vec<u8>,
    len: usize,
}

impl Buffer {
    pub(crate) fn new(len: usize) -> Self {
        let buf = match class(len) {
            Some(class) => pool(class).pop().unwrap_or_else(|| vec![0; MIN << class]),
            None => vec![0; len],
        };
        Self { buf, len }
    }

    /// The `len` bytes to read into (initialized, maybe with old contents).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// The frame: call only once the read filled every byte.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let capacity = self.buf.len();
        let Some(class) = class(capacity).filter(|&class| MIN << class == capacity) else {
            return;
        };
        let mut idle = pool(class);
        if (idle.len() + 1) * capacity <= IDLE_BYTES {
            idle.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_a_class_and_huge_ones_are_not_pooled() {
        assert_eq!(class(1), Some(0));
        assert_eq!(class(4096), Some(0));
        assert_eq!(class(4097), Some(1));
        assert_eq!(class(65536), Some(4));
        assert_eq!(class(1 << 20), Some(8));
        assert_eq!(class((1 << 20) + 1), None);
        assert_eq!(class(usize::MAX), None);
    }

    #[test]
    fn a_sent_chunk_gives_its_buffer_to_the_next_one() {
        // A size no other test uses, so the pool of its class is this test's.
        let len = 300_000;
        let mut first = Buffer::new(len);
        first.as_mut_slice().fill(7);
        let frame = first.freeze();
        assert_eq!(frame.len(), len);
        let address = frame.as_ptr();
        drop(frame);
        let mut second = Buffer::new(len - 1);
        assert_eq!(second.as_mut_slice().as_ptr(), address, "reused");
        assert_eq!(second.as_ref().len(), len - 1);
    }

    #[test]
    fn idle_buffers_are_bounded() {
        let len = 1 << 20;
        let buffers: Vec<_> = (0..8).map(|_| Buffer::new(len)).collect();
        drop(buffers);
        assert!(pool(class(len).unwrap()).len() <= IDLE_BYTES / len);
    }
}
