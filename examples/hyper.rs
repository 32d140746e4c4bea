//! The smallest server: hyper-util, `RangeServeLayer` and `ServeDir`, no framework.
//!
//! ```text
//! cargo run --example hyper -- [--root DIR] [--addr HOST:PORT]
//! ```
//!
//! Without `--root` it serves a small demo folder it creates in the system's
//! temporary directory. HTTP/1.1 and HTTP/2 (prior knowledge) share the port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;
use tower_range_serve::{RangeServe, RangeServeLayer, ServeDir};

/// Serve a directory as resumable downloads with hyper alone.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to serve. Without it, a small demo folder is created and served.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3002")]
    addr: SocketAddr,
}

/// The whole application: the files under `root`, range-aware.
pub fn app(root: &Path) -> RangeServe<ServeDir> {
    RangeServeLayer::new().layer(ServeDir::new(root))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let root = match args.root {
        Some(root) => root,
        None => demo_folder()?,
    };
    let listener = TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!("serving {} on http://{addr}", root.display());
    println!("  curl -r 0-4 http://{addr}/hello.txt      # 206: the first 5 bytes");
    println!("  curl -I http://{addr}/hello.txt          # headers only");

    let service = app(&root);
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue; // out of file descriptors and the like: keep serving
        };
        // Small frames go out at once, not after the previous segment's ACK.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            // Errors are clients going away mid-download.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A small folder to serve when no `--root` is given.
fn demo_folder() -> std::io::Result<PathBuf> {
    let root = std::env::temp_dir().join("tower-range-serve-hyper-demo");
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        root.join("hello.txt"),
        "Hello from hyper and tower-range-serve!\n",
    )?;
    Ok(root)
}
