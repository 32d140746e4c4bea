//! The demo download server: a directory served through `ServeDir` and
//! `RangeServeLayer` on hyper (HTTP/1.1 and HTTP/2 on one port).
//!
//! ```text
//! cargo run --release --example serve -- [--root DIR] [--addr HOST:PORT]
//! ```
//!
//! Without `--root` it creates a demo folder in the system's temporary directory
//! (a few small files and a 64 MiB one) and serves that.

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
use tower::Layer;
use tower_range_serve::{RangeServeLayer, ServeDir};

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
    #[arg(long, value_name = "BYTES", default_value_t = tower_range_serve::DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,

    /// Most ranges served in one multipart response; more are answered with 200.
    #[arg(long, value_name = "N", default_value_t = tower_range_serve::DEFAULT_MAX_RANGES)]
    max_ranges: usize,
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

    let service = RangeServeLayer::new()
        .chunk_size(args.chunk_size)
        .max_ranges(args.max_ranges)
        .layer(ServeDir::new(&root));
    print_banner(&root, addr);

    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the others.
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
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

fn print_banner(root: &Path, addr: SocketAddr) {
    let base = format!("http://{addr}");
    println!(
        "tower-range-serve demo: serving {} on {base}",
        root.display()
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
