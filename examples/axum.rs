//! A download site on axum with a bandwidth policy per route.
//!
//! ```text
//! cargo run --example axum -- [--root DIR] [--addr HOST:PORT] [--grace SECONDS] [--idle-timeout SECONDS]
//! ```
//!
//! - `/free/{*path}`: the files under the root, 256 KiB/s per client IP (axum's
//!   `ConnectInfo<SocketAddr>` keys the client limit).
//! - `/premium/{*path}`: the same files, 8 MiB/s per user, for requests with a
//!   valid bearer token (401 without one). A toy authentication middleware puts
//!   the user id into the request extensions; the layer keys the user's limit by
//!   it.
//! - `/report`: a handler returning a `FileResponse` as an attachment.
//! - `/api/tiers`: JSON, passed through the layer untouched.
//!
//! Each route group has its own clone of one `RangeServeLayer` with its own
//! client rate, so their limits are separate while the observer (a line per
//! finished download) and the graceful shutdown are shared. It runs on
//! `axum::serve` over `lifecycle::Connections`: a client that accepts no byte
//! for `--idle-timeout` seconds is disconnected, and on Ctrl-C or SIGTERM new
//! downloads get 503 while running ones have `--grace` seconds to finish;
//! then every connection still open is closed, readers or not, and the server
//! exits. Without `--root` it serves a demo folder it creates in the system's
//! temporary directory.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use tokio::net::TcpListener;
use tower_range_serve::lifecycle::{Connections, Download, End, Observer, Shutdown};
use tower_range_serve::{Bandwidth, ClientKey, FileResponse, RangeServeLayer, ServeDir};

// Ctrl-C and SIGTERM, as the demo server stops on them.
#[path = "serve/signal.rs"]
mod signal;

/// The free tier's rate, shared by all downloads of one client IP.
pub const FREE_RATE: Bandwidth = Bandwidth::kib(256);
/// The premium tier's rate, shared by all downloads of one user.
pub const PREMIUM_RATE: Bandwidth = Bandwidth::mib(8);
/// The toy token store: bearer token and the user it belongs to.
pub const TOKENS: &[(&str, &str)] = &[("alice-secret", "alice"), ("bob-secret", "bob")];

/// A download site with per-route bandwidth policy.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to serve. Without it, a demo folder is created and served.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3001")]
    addr: SocketAddr,

    /// Seconds running downloads may go on after Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    grace: f64,

    /// Seconds a client may accept no byte before it is disconnected (0 = never).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    idle_timeout: f64,
}

/// The authenticated user, put into the request extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub struct UserId(pub String);

/// The whole site, serving the files under `root`, with clones of `base` (its
/// observer and its shutdown are shared by every route).
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`, so the
/// free tier can tell clients apart by IP (see [`serve`]).
pub fn app(root: &Path, base: &RangeServeLayer) -> Router {
    let root = Arc::new(root.to_path_buf());

    // Free: 256 KiB/s per client IP. The default client key finds the peer in
    // axum's `ConnectInfo<SocketAddr>` (the crate's `axum` feature). A clone
    // given a client rate gets limits of its own.
    let free = Router::new()
        .route_service("/{*path}", ServeDir::new(root.as_path()))
        .layer(base.clone().client_rate(FREE_RATE));

    // Premium: 8 MiB/s per user. Authentication runs first (the outer layer), so
    // the user id is in the extensions when the range layer picks the policy.
    let premium = Router::new()
        .route_service("/{*path}", ServeDir::new(root.as_path()))
        .layer(base.clone().client_rate(PREMIUM_RATE).client_key(|parts| {
            let UserId(user) = parts.extensions.get::<UserId>()?;
            Some(ClientKey::from(user.as_str()))
        }))
        .layer(middleware::from_fn(authenticate));

    // Handlers of one's own, unthrottled. The JSON route is not file-backed: the
    // layer passes it through.
    let site = Router::new()
        .route("/report", get(report))
        .route("/api/tiers", get(tiers))
        .with_state(root)
        .layer(base.clone());

    Router::new()
        .nest("/free", free)
        .nest("/premium", premium)
        .merge(site)
}

/// A toy bearer-token check: a known token puts its [`UserId`] into the request
/// extensions; anything else is answered with 401.
pub async fn authenticate(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| TOKENS.iter().find(|(known, _)| *known == token))
        .map(|(_, user)| UserId((*user).to_owned()));
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response(),
    }
}

/// The report, sent as a download named after today's report.
async fn report(State(root): State<Arc<PathBuf>>) -> Result<FileResponse, StatusCode> {
    FileResponse::open(root.join("report.csv"))
        .await
        .map(|file| file.attachment(Some("report-2024.csv")))
        .map_err(|_| StatusCode::NOT_FOUND)
}

/// The tiers as JSON (written by hand, to keep serde out of the example).
async fn tiers() -> impl IntoResponse {
    let body = format!(
        r#"{{"free":{{"bytes_per_second":{}}},"premium":{{"bytes_per_second":{}}}}}"#,
        FREE_RATE.bytes_per_second(),
        PREMIUM_RATE.bytes_per_second(),
    );
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// Serves `app` on `listener` until `stop` resolves, then shuts down
/// gracefully with `shutdown` (the handle of the layer `app` was built with): new downloads get 503, running ones have `grace` to finish, then
/// every connection still open is closed. Clients that accept no byte for
/// `idle_timeout` are disconnected (zero: never).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    grace: Duration,
    idle_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = Connections::new(listener, &shutdown).idle_timeout(idle_timeout);
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            stop.await;
            shutdown.begin(grace);
        }
    };
    axum::serve(
        listener.axum(),
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// Prints a line per finished download.
#[derive(Debug)]
pub struct Log;

impl Observer for Log {
    fn end(&self, download: &Download, end: &End) {
        println!(
            "{} {} {}: {} of {} bytes in {:.1} s, {:?}",
            download
                .client
                .as_ref()
                .map_or("-".into(), |c| c.to_string()),
            download.status.as_u16(),
            download.path,
            end.sent,
            download.total,
            end.elapsed.as_secs_f64(),
            end.outcome,
        );
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let root = match args.root {
        Some(root) => root,
        None => demo_folder()?,
    };
    let listener = TcpListener::bind(args.addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (token, _) = TOKENS[0];
    println!("serving {} on {base}", root.display());
    println!("  curl -O {base}/free/big.bin                # {FREE_RATE} per client IP");
    println!(
        "  curl -O -H 'Authorization: Bearer {token}' {base}/premium/big.bin   # {PREMIUM_RATE} per user"
    );
    println!("  curl -i {base}/premium/big.bin             # 401 without a token");
    println!("  curl -OJ {base}/report                     # saved as report-2024.csv");
    println!("  curl {base}/api/tiers                      # JSON, passed through");
    println!("  curl -r 0-99 {base}/free/hello.txt         # any route takes ranges");

    let layer = RangeServeLayer::new().observer(Log);
    let app = app(&root, &layer);
    let grace = Duration::from_secs_f64(args.grace.max(0.0));
    let idle_timeout = Duration::from_secs_f64(args.idle_timeout.max(0.0));
    let stop = async move {
        signal::stop().await;
        println!("shutting down: running downloads have {grace:?}");
    };
    serve(
        listener,
        app,
        layer.shutdown_handle(),
        grace,
        idle_timeout,
        stop,
    )
    .await?;
    println!("stopped");
    Ok(())
}

/// A demo folder in the temporary directory, with a 4 MiB file that takes 16 s
/// on the free tier.
fn demo_folder() -> std::io::Result<PathBuf> {
    let root = std::env::temp_dir().join("tower-range-serve-axum-demo");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("hello.txt"), "Hello from axum!\n")?;
    std::fs::write(
        root.join("report.csv"),
        "month,downloads\n2024-01,1200\n2024-02,1350\n",
    )?;
    let mut big = std::io::BufWriter::new(std::fs::File::create(root.join("big.bin"))?);
    let mut state: u32 = 0x9e37_79b9;
    for _ in 0..4 << 20 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        big.write_all(&[state as u8])?;
    }
    big.flush()?;
    Ok(root)
}
