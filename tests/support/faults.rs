//! The fault plans of the proxy (`proxy.rs`): what it does to connections, and
//! the small deterministic generator every plan is drawn from.
#![allow(dead_code, unreachable_pub)]

/// What the proxy does to connections. Probabilities are per connection (cuts,
/// resets) or per event (stalls, trickles); sizes in bytes.
#[derive(Clone, Debug)]
pub struct Faults {
    /// The chance that a connection is cut at all.
    pub cut: f64,
    /// The first this many connections are cut whatever `cut` says.
    pub cut_first: u64,
    /// A cut comes after a number of bytes drawn uniformly from this range
    /// (inclusive), counted in the direction cut.
    pub cut_after: (u64, u64),
    /// The chance that a cut is in the client-to-server direction (the request
    /// cut short) rather than in the server-to-client one (the response)...
    pub cut_upstream: f64,
    /// ...after this many bytes of the request (inclusive; 0 cuts before any).
    pub cut_upstream_after: (u64, u64),
    /// The chance that a cut resets (RST) rather than closes (FIN).
    pub reset: f64,
    /// Bytes between two events (stall or trickle), drawn uniformly; 0 for none.
    pub event_every: (u64, u64),
    /// The chance that an event is a stall (otherwise a trickle).
    pub stall: f64,
    /// How long a stall lasts, in milliseconds, drawn uniformly.
    pub stall_ms: (u64, u64),
    /// A trickle sends this many bytes in all...
    pub trickle_bytes: (u64, u64),
    /// ...a few bytes at a time...
    pub trickle_step: (u64, u64),
    /// ...with this many milliseconds between steps.
    pub trickle_ms: (u64, u64),
    /// Writes are split into pieces of 1 to this many bytes (0: not split).
    pub max_split: u64,
}

impl Faults {
    /// No fault at all: a plain relay.
    pub fn none() -> Self {
        Self {
            cut: 0.0,
            cut_first: 0,
            cut_after: (0, 0),
            cut_upstream: 0.0,
            cut_upstream_after: (0, 0),
            reset: 0.0,
            event_every: (0, 0),
            stall: 0.0,
            stall_ms: (0, 0),
            trickle_bytes: (0, 0),
            trickle_step: (1, 1),
            trickle_ms: (0, 0),
            max_split: 0,
        }
    }

    /// Everything at once, sized for a file of `len` bytes: most connections cut
    /// somewhere in the first half of the file, half of the cuts resets, a stall
    /// or a trickle every few tens of KiB, writes split at odd sizes.
    pub fn rough(len: u64) -> Self {
        Self {
            cut: 0.9,
            cut_first: 0,
            cut_after: (1, (len / 2).max(2)),
            cut_upstream: 0.1,
            cut_upstream_after: (0, 120),
            reset: 0.5,
            event_every: (16 << 10, 96 << 10),
            stall: 0.5,
            stall_ms: (5, 60),
            trickle_bytes: (16, 512),
            trickle_step: (1, 16),
            trickle_ms: (1, 3),
            max_split: 3000,
        }
    }
}

/// splitmix64: a small deterministic generator, enough for fault plans.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (`low` when `high <= low`).
    pub fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}
