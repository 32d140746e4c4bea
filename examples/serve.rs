//! The demo download server: a directory served through `ServeDir` and
//! `RangeServeLayer` on hyper (HTTP/1.1 and HTTP/2 on one port).
//!
//! ```text
//! cargo run --release --example serve -- [--root DIR] [--addr HOST:PORT]
//! ```
//!
//! Without `--root` it creates a demo folder in the system's temporary directory
//! (a few small files and a 64 MiB one) and serves that.
//!
//! Bandwidth: `--rate` (each download), `--rate-after` (bytes at full speed first),
//! `--client-rate` (shared by all downloads of one peer IP), `--total-rate` (all
//! downloads together), `--max-streams-per-client` (beyond it, 429). Rates are
//! bytes per second, or with units: `256KiB`, `1MiB`, `10MB`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

/// What stays unencoded in a URL path segment: RFC 3986 `unreserved`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Serve a directory as resumable, range-aware downloads.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Directory to serve. Without it, a demo folder is created and served.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// Bytes read from disk at once, and the largest body frame.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = bytes)]
    chunk_size: u64,

    /// Most ranges served in one multipart response; more are answered with 200.
    #[arg(long, value_name = "N", default_value_t = tower_range_serve::DEFAULT_MAX_RANGES)]
    max_ranges: usize,

    /// Rate of each download (0 = unlimited), e.g. 256KiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    rate: Bandwidth,

    /// Bytes of each download sent at full speed before --rate applies, e.g. 4MiB.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = bytes)]
    rate_after: u64,

    /// Rate shared by all downloads of one client (peer IP), e.g. 1MiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    client_rate: Bandwidth,

    /// Rate of all downloads together, e.g. 100MiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    total_rate: Bandwidth,

    /// Most concurrent downloads of one client; more get 429 Too Many Requests.
    #[arg(long, value_name = "N")]
    max_streams_per_client: Option<usize>,
}

/// A byte count, with the units `Bandwidth` accepts (`64KiB`, `1MB`, plain bytes).
fn bytes(value: &str) -> Result<u64, String> {
    value
        .parse::<Bandwidth>()
        .map(Bandwidth::bytes_per_second)
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let root = match &args.root {
        Some(root) if root.is_dir() => root.clone(),
        Some(root) => {
            eprintln!("error: --root {} is not a directory", root.display());
            return ExitCode::FAILURE;
        }
        None => match demo_folder() {
            Ok(root) => root,
            Err(e) => {
                eprintln!("error: cannot create the demo folder: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let listener = match TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");

    let mut layer = RangeServeLayer::new()
        .chunk_size(usize::try_from(args.chunk_size).unwrap_or(usize::MAX))
        .max_ranges(args.max_ranges);
    // Only a configured limit turns throttling on: an unlimited server pays nothing.
    if !args.rate.is_unlimited() {
        layer = layer.rate(args.rate).rate_after(args.rate_after);
    }
    if !args.client_rate.is_unlimited() {
        layer = layer.client_rate(args.client_rate);
    }
    if !args.total_rate.is_unlimited() {
        layer = layer.total_rate(args.total_rate);
    }
    if let Some(max) = args.max_streams_per_client {
        layer = layer.max_streams_per_client(max);
    }
    let service = layer.layer(ServeDir::new(&root));
    print_banner(&root, addr, &args);

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the others.
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        // The peer address keys the per-client limits.
        let service = TowerToHyperService::new(service.clone().map_request(
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer);
                request
            },
        ));
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            // Errors here are clients going away mid-download: normal for a
            // download server.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Creates (or reuses) the demo folder and returns its path.
fn demo_folder() -> std::io::Result<PathBuf> {
    const BIG: u64 = 64 * 1024 * 1024;
    let root = std::env::temp_dir().join("tower-range-serve-demo");
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(
        root.join("hello.txt"),
        "Hello from tower-range-serve!\nAsk for a part of me with a Range header.\n",
    )?;
    std::fs::write(
        root.join("docs/readme.md"),
        "# Demo\n\nFiles in sub-folders are served too.\n",
    )?;
    std::fs::write(root.join("naïve café.txt"), "A file name beyond ASCII.\n")?;
    let big = root.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(BIG) {
        write_pseudo_random(&big, BIG)?;
    }
    Ok(root)
}

/// Writes `len` bytes of deterministic pseudo-random data (so corruption shows).
fn write_pseudo_random(path: &Path, len: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() as u64 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block)?;
    }
    out.flush()
}

fn print_banner(root: &Path, addr: SocketAddr, args: &Args) {
    let base = format!("http://{addr}");
    println!(
        "tower-range-serve demo: serving {} on {base}",
        root.display()
    );
    println!(
        "bandwidth: each download {}{}, each client {}, total {}{}",
        args.rate,
        match args.rate_after {
            0 => String::new(),
            after => format!(" after {after} bytes"),
        },
        args.client_rate,
        args.total_rate,
        match args.max_streams_per_client {
            Some(max) => format!(", at most {max} downloads per client"),
            None => String::new(),
        },
    );
    let mut files: Vec<_> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for (name, len) in files.iter().take(20) {
        let encoded = utf8_percent_encode(name, SEGMENT);
        println!("  {base}/{encoded}  ({len} bytes)");
    }
    let (name, url) = files
        .iter()
        .max_by_key(|(_, len)| *len)
        .map(|(name, _)| {
            (
                name.clone(),
                format!("{base}/{}", utf8_percent_encode(name, SEGMENT)),
            )
        })
        .unwrap_or_else(|| ("FILE".to_owned(), format!("{base}/FILE")));
    println!();
    println!("Try:");
    println!("  curl -s -r 0-99 {url} | wc -c               # the first 100 bytes (206)");
    println!("  curl -I {url}                               # headers only");
    println!("  curl --max-time 0.05 -o '{name}' {url}      # a download cut short...");
    println!("  curl -C - -o '{name}' {url}                 # ...resumed where it stopped");
    println!("  curl -H 'Range: bytes=0-9,20-29' {url}      # multipart/byteranges");
    println!();
    println!("Press Ctrl-C to stop.");
}
