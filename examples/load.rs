//! A load client for throttling benchmarks: N concurrent downloads over loopback,
//! read for a fixed time, then a report of what each stream got.
//!
//! ```text
//! cargo run --release --example load -- --url http://127.0.0.1:3000/big.bin \
//!     --connections 16 --seconds 8
//! ```
//!
//! Prints one line of `key=value` pairs: the aggregate rate, the per-stream rates
//! (min, p1, median, p99, max), their spread around the mean, and Jain's
//! fairness index. Each stream's rate is measured from its first body byte, so
//! connection set-up does not count against it. The `steady_*` rates are
//! measured from the first to the last byte, without the first chunk's burst
//! (the bytes before the first pause of 20 ms): how precisely a paced stream
//! keeps its rate whatever its send quantum, where a window of `--seconds`
//! counts whole chunks (one chunk a second is up to 1/seconds of the rate
//! either way). A stream that never paused has no steady rate. With `--streams-per-connection N` (N > 1) the
//! downloads share HTTP/2 connections (prior knowledge), N per connection: many
//! thousands of streams then need few sockets.
//!
//! With `--source-ips N` the HTTP/1.1 connections come from N loopback addresses
//! (127.X.Y.Z from `--source-offset` on, one after the other), so a server keyed
//! by peer IP sees N clients: Linux routes all of 127.0.0.0/8 to loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// Concurrent downloads for a fixed time.
#[derive(Debug, Parser)]
struct Args {
    /// The URL to download (http, loopback). Given several times, connections
    /// take the URLs in turn (replicas of one service, say).
    #[arg(long, required = true)]
    url: Vec<http::Uri>,

    /// Concurrent downloads, one connection each.
    #[arg(long, default_value_t = 1)]
    connections: usize,

    /// How long to read.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,

    /// Downloads opened per millisecond while ramping up.
    #[arg(long, default_value_t = 20)]
    ramp: usize,

    /// Downloads per connection; above 1, over HTTP/2.
    #[arg(long, default_value_t = 1)]
    streams_per_connection: usize,

    /// Loopback source addresses the connections take in turn (0 = the
    /// system's choice).
    #[arg(long, default_value_t = 0)]
    source_ips: u32,

    /// The first source address, counted from 127.0.0.0 (1 = 127.0.0.1).
    #[arg(long, default_value_t = 65_537)]
    source_offset: u32,
}

struct Stream {
    bytes: AtomicU64,
    /// Microseconds from the start of the run to the first body byte.
    first_byte_us: AtomicU64,
    /// Microseconds from the start of the run to the latest body byte.
    last_byte_us: AtomicU64,
    /// Bytes received before the first pause of 20 ms or more: the first
    /// chunk's burst (`u64::MAX` in `burst_closed_us` while it lasts).
    burst: AtomicU64,
    /// When the burst ended; `u64::MAX` while it lasts.
    burst_closed_us: AtomicU64,
}

impl Stream {
    fn new() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            first_byte_us: AtomicU64::new(u64::MAX),
            last_byte_us: AtomicU64::new(0),
            burst: AtomicU64::new(0),
            burst_closed_us: AtomicU64::new(u64::MAX),
        }
    }

    /// The rate between the first and the last byte, without the first burst:
    /// how precisely a paced stream keeps its rate, whatever its send quantum
    /// (a window of `seconds` counts whole chunks, which a coarse quantum
    /// quantizes by up to one chunk).
    fn steady_rate(&self) -> Option<f64> {
        let first = self.first_byte_us.load(Ordering::Relaxed);
        let last = self.last_byte_us.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed) - self.burst.load(Ordering::Relaxed);
        let closed = self.burst_closed_us.load(Ordering::Relaxed);
        (first != u64::MAX && closed != u64::MAX && last > first)
            .then(|| bytes as f64 / ((last - first) as f64 / 1e6))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut targets = Vec::with_capacity(args.url.len());
    for url in &args.url {
        match target(url) {
            Ok(addr) => targets.push((addr, url.clone())),
            Err(e) => {
                eprintln!("error: {url}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let window = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut streams = Vec::with_capacity(args.connections);
    let per_connection = args.streams_per_connection.max(1);
    let mut h2 = None;
    for i in 0..args.connections {
        if i > 0 && i % args.ramp.max(1) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let stream = Arc::new(Stream::new());
        streams.push(stream.clone());
        let (addr, url) = &targets[(i / per_connection) % targets.len()];
        let addr = *addr;
        if per_connection == 1 {
            let source = (args.source_ips > 0).then(|| {
                let index = u32::try_from(i).unwrap_or(u32::MAX) % args.source_ips;
                Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + args.source_offset + index)
            });
            tokio::spawn(download(addr, source, url.clone(), stream, start));
            continue;
        }
        if i % per_connection == 0 {
            h2 = http2_connection(addr).await;
        }
        if let Some(sender) = h2.clone() {
            tokio::spawn(receive(sender, request(addr, url), stream, start));
        }
    }
    tokio::time::sleep_until((start + window).into()).await;
    let end = start.elapsed();

    let mut rates: Vec<f64> = streams
        .iter()
        .filter_map(|s| {
            let first = s.first_byte_us.load(Ordering::Relaxed);
            let seconds = end.as_secs_f64() - first as f64 / 1e6;
            (first != u64::MAX && seconds > 0.0)
                .then(|| s.bytes.load(Ordering::Relaxed) as f64 / seconds)
        })
        .collect();
    let started = rates.len();
    let total: u64 = streams
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .sum();
    rates.sort_by(f64::total_cmp);
    let mean = rates.iter().sum::<f64>() / started.max(1) as f64;
    let spread = rates
        .iter()
        .map(|r| (r - mean).abs() / mean)
        .fold(0.0, f64::max);
    let jain = rates.iter().sum::<f64>().powi(2)
        / (started.max(1) as f64 * rates.iter().map(|r| r * r).sum::<f64>());
    let pick = |q: f64| {
        rates
            .get(((started as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mut steady: Vec<f64> = streams.iter().filter_map(|s| s.steady_rate()).collect();
    steady.sort_by(f64::total_cmp);
    let steady_pick = |q: f64| {
        steady
            .get(((steady.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "connections={} started={} seconds={:.3} total_bytes={} aggregate_Bps={:.0} \
         stream_min_Bps={:.0} stream_p1_Bps={:.0} stream_median_Bps={:.0} \
         stream_p99_Bps={:.0} stream_max_Bps={:.0} max_spread={:.4} jain={:.5} \
         steady_p1_Bps={:.0} steady_median_Bps={:.0} steady_p99_Bps={:.0}",
        args.connections,
        started,
        end.as_secs_f64(),
        total,
        total as f64 / end.as_secs_f64(),
        pick(0.0),
        pick(0.01),
        pick(0.5),
        pick(0.99),
        pick(1.0),
        spread,
        jain,
        steady_pick(0.01),
        steady_pick(0.5),
        steady_pick(0.99),
    );
    ExitCode::SUCCESS
}

/// The loopback address of `url`.
fn target(url: &http::Uri) -> Result<SocketAddr, String> {
    let authority = url.authority().ok_or("the URL needs a host and port")?;
    authority
        .as_str()
        .parse()
        .map_err(|e| format!("{authority} is not HOST:PORT: {e}"))
}

fn request(addr: SocketAddr, url: &http::Uri) -> http::Request<Empty<Bytes>> {
    http::Request::get(url.clone())
        .header(http::header::HOST, addr.to_string())
        .body(Empty::new())
        .expect("a valid request")
}

/// An HTTP/2 connection (prior knowledge) whose sender can be cloned per stream.
async fn http2_connection(
    addr: SocketAddr,
) -> Option<hyper::client::conn::http2::SendRequest<Empty<Bytes>>> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let executor = hyper_util::rt::TokioExecutor::new();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(executor)
        .handshake(TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Downloads `url` over a new HTTP/1.1 connection (from `source` if given),
/// counting body bytes.
async fn download(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    url: http::Uri,
    stream: Arc<Stream>,
    start: Instant,
) {
    let Ok(tcp) = connect(addr, source).await else {
        return;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await
    else {
        return;
    };
    tokio::spawn(connection);
    let Ok(response) = sender.send_request(request(addr, &url)).await else {
        return;
    };
    count(response.into_body(), stream, start).await;
}

async fn connect(addr: SocketAddr, source: Option<Ipv4Addr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(addr).await
}

/// Downloads over a shared HTTP/2 connection, counting body bytes.
async fn receive(
    mut sender: hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    request: http::Request<Empty<Bytes>>,
    stream: Arc<Stream>,
    start: Instant,
) {
    if let Ok(response) = sender.send_request(request).await {
        count(response.into_body(), stream, start).await;
    }
}

async fn count(mut body: hyper::body::Incoming, stream: Arc<Stream>, start: Instant) {
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let at = start.elapsed().as_micros() as u64;
            if stream.first_byte_us.load(Ordering::Relaxed) == u64::MAX {
                stream.first_byte_us.store(at, Ordering::Relaxed);
            }
            if stream.burst_closed_us.load(Ordering::Relaxed) == u64::MAX {
                let previous = stream.last_byte_us.load(Ordering::Relaxed);
                if previous > 0 && at >= previous + 20_000 {
                    stream.burst_closed_us.store(at, Ordering::Relaxed);
                } else {
                    stream.burst.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            stream.last_byte_us.store(at, Ordering::Relaxed);
            stream.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
}
