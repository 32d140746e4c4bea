//! gRPC and file downloads on one port: tonic's health service and `ServeDir`
//! behind one `RangeServeLayer`.
//!
//! ```text
//! cargo run --example tonic -- [--root DIR] [--addr HOST:PORT]
//! ```
//!
//! tonic's `Routes` become an axum router; paths no gRPC service claims fall back
//! to `ServeDir`. The layer wraps both: file downloads get ranges and
//! preconditions, gRPC responses pass through untouched (frames, trailers, no
//! `Content-Length`). hyper-util serves HTTP/2 (gRPC) and HTTP/1.1 on the port.
//! Without `--root` it serves a small demo folder it creates in the system's
//! temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::server::{HealthReporter, health_reporter};
use tower_range_serve::{RangeServeLayer, ServeDir};

/// gRPC health checks and file downloads on one port.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to serve. Without it, a small demo folder is created and served.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3003")]
    addr: SocketAddr,
}

/// The gRPC health service and the files under `root`, all behind the layer.
///
/// The reporter sets the health of the services; the server as a whole (service
/// name `""`) starts out `SERVING`.
pub fn app(root: &Path) -> (HealthReporter, Router) {
    let (reporter, health) = health_reporter();
    let router = Routes::new(health)
        .into_axum_router()
        .fallback_service(ServeDir::new(root))
        .layer(RangeServeLayer::new());
    (reporter, router)
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
    println!("serving gRPC health and {} on {addr}", root.display());
    println!("  grpc_health_probe -addr={addr}             # gRPC: SERVING");
    println!("  curl -r 0-4 http://{addr}/hello.txt        # a file: 206");
    println!("  curl --http2-prior-knowledge -r 6- http://{addr}/hello.txt");

    let (_reporter, app) = app(&root);
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue; // out of file descriptors and the like: keep serving
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A small folder to serve when no `--root` is given.
fn demo_folder() -> std::io::Result<PathBuf> {
    let root = std::env::temp_dir().join("tower-range-serve-tonic-demo");
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        root.join("hello.txt"),
        "Hello from tonic's port: gRPC and files side by side.\n",
    )?;
    Ok(root)
}
