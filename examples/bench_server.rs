//! The server that `scripts/bench.sh` measures: a directory served either through
//! this crate or through `tower_http::services::ServeDir`, on the same hyper setup
//! (HTTP/1.1 and HTTP/2 on one port, a tokio runtime with two workers).
//!
//! ```text
//! cargo run --release --example bench_server -- --root DIR [--impl ours|tower-http]
//!     [--addr HOST:PORT] [--chunk-size BYTES] [--h1-max-buf-size BYTES]
//! ```
//!
//! The first line on stdout is `listening on ADDR`, so a script can bind port 0
//! and read the port back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Layer, Service};
use tower_range_serve::BoxError;

/// Which implementation answers the requests.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Impl {
    /// `RangeServeLayer` around this crate's `ServeDir`.
    Ours,
    /// `tower_http::services::ServeDir`.
    TowerHttp,
}

/// Serve a directory for benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to serve.
    #[arg(long, value_name = "DIR")]
    root: PathBuf,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    addr: SocketAddr,

    /// Implementation to serve with.
    #[arg(long = "impl", value_enum, default_value = "ours")]
    implementation: Impl,

    /// Bytes read at once (ours only).
    #[arg(long, value_name = "BYTES", default_value_t = tower_range_serve::DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,

    /// hyper's HTTP/1 write buffer limit per connection (hyper's default is about
    /// 400 KiB; the minimum is 8192).
    #[arg(long, value_name = "BYTES")]
    h1_max_buf_size: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.root.is_dir() {
        eprintln!("error: --root {} is not a directory", args.root.display());
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
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
        println!("listening on {addr}");
        let max_buf_size = args.h1_max_buf_size;
        match args.implementation {
            Impl::Ours => {
                let service = tower_range_serve::RangeServeLayer::new()
                    .chunk_size(args.chunk_size)
                    .layer(tower_range_serve::ServeDir::new(&args.root));
                serve(listener, service, max_buf_size).await
            }
            Impl::TowerHttp => {
                let service = tower_http::services::ServeDir::new(&args.root);
                serve(listener, service, max_buf_size).await
            }
        }
    })
}

/// Accepts connections forever, serving each with a clone of `service`.
async fn serve<S, B>(listener: TcpListener, service: S, max_buf_size: Option<usize>) -> ExitCode
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        // As nginx (`tcp_nodelay on`) and Go do.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if let Some(max) = max_buf_size {
                builder.http1().max_buf_size(max);
            }
            // Errors are clients going away mid-download.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
