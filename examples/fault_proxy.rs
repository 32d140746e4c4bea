//! A fault-injecting TCP proxy: cuts connections after a random number of bytes
//! (either direction), stalls, trickles, resets instead of closing, and splits
//! writes at odd sizes, with a seeded plan per connection so a failure replays.
//!
//! ```text
//! cargo run --example serve -- --root DIR --addr 127.0.0.1:3000
//! cargo run --example fault_proxy -- --upstream 127.0.0.1:3000 --seed 7 [--file-size BYTES]
//!     [--listen 127.0.0.1:0] [--cut 0.9] [--cut-max BYTES] [--reset 0.5] [--no-events]
//! ```
//!
//! Prints `listening on 127.0.0.1:PORT` first, then one line per cut connection
//! (`conn 12: cut down after 34567 bytes (reset)`), and a summary every
//! `--summary-every` seconds. The proxy itself is `tests/support/proxy.rs` and
//! `tests/support/faults.rs`, shared with the Rust tests.
//!
//! Only for loopback: it refuses to listen on or connect to anything else.

#[path = "../tests/support/faults.rs"]
mod faults;
#[path = "../tests/support/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use proxy::{Faults, Proxy};

/// Relay to a server through rough-network faults.
#[derive(Debug, Parser)]
struct Args {
    /// Where to listen (loopback only; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// The server to relay to (loopback only).
    #[arg(long)]
    upstream: SocketAddr,

    /// The seed of the fault plans.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// The size of the files fetched: cuts fall in its first half by default.
    #[arg(long, default_value_t = 4 << 20)]
    file_size: u64,

    /// The chance that a connection is cut.
    #[arg(long)]
    cut: Option<f64>,

    /// The most bytes before a cut.
    #[arg(long)]
    cut_max: Option<u64>,

    /// The chance that a cut is a reset (RST) rather than a close (FIN).
    #[arg(long)]
    reset: Option<f64>,

    /// No stalls and no trickles.
    #[arg(long)]
    no_events: bool,

    /// Seconds between summaries printed.
    #[arg(long, default_value_t = 1)]
    summary_every: u64,
}

fn main() {
    let args = Args::parse();
    assert!(
        args.listen.ip().is_loopback() && args.upstream.ip().is_loopback(),
        "loopback addresses only"
    );
    let mut faults = Faults::rough(args.file_size);
    if let Some(cut) = args.cut {
        faults.cut = cut;
    }
    if let Some(max) = args.cut_max {
        faults.cut_after.1 = max;
    }
    if let Some(reset) = args.reset {
        faults.reset = reset;
    }
    if args.no_events {
        faults.event_every = (0, 0);
    }
    let proxy = Proxy::start_on(args.listen, args.upstream, faults, args.seed, true);
    println!("listening on {}", proxy.addr());
    loop {
        std::thread::sleep(Duration::from_secs(args.summary_every.max(1)));
        println!("summary: {}", proxy.stats().summary());
    }
}
