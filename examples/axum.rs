//! A download site on axum with a bandwidth policy per route.
//!
//! ```text
//! cargo run --example axum -- [--root DIR] [--addr HOST:PORT]
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
//! Each route group has its own `RangeServeLayer`, so their limits are separate.
//! Without `--root` it serves a demo folder it creates in the system's temporary
//! directory.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use tokio::net::TcpListener;
use tower_range_serve::{Bandwidth, ClientKey, FileResponse, RangeServeLayer, ServeDir};

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
}

/// The authenticated user, put into the request extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub struct UserId(pub String);

/// The whole site, serving the files under `root`.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`, so the
/// free tier can tell clients apart by IP.
pub fn app(root: &Path) -> Router {
    let root = Arc::new(root.to_path_buf());

    // Free: 256 KiB/s per client IP. The default client key finds the peer in
    // axum's `ConnectInfo<SocketAddr>` (the crate's `axum` feature).
    let free = Router::new()
        .route_service("/{*path}", ServeDir::new(root.as_path()))
        .layer(RangeServeLayer::new().client_rate(FREE_RATE));

    // Premium: 8 MiB/s per user. Authentication runs first (the outer layer), so
    // the user id is in the extensions when the range layer picks the policy.
    let premium = Router::new()
        .route_service("/{*path}", ServeDir::new(root.as_path()))
        .layer(
            RangeServeLayer::new()
                .client_rate(PREMIUM_RATE)
                .client_key(|parts| {
                    let UserId(user) = parts.extensions.get::<UserId>()?;
                    Some(ClientKey::from(user.as_str()))
                }),
        )
        .layer(middleware::from_fn(authenticate));

    // Handlers of one's own, unthrottled. The JSON route is not file-backed: the
    // layer passes it through.
    let site = Router::new()
        .route("/report", get(report))
        .route("/api/tiers", get(tiers))
        .with_state(root)
        .layer(RangeServeLayer::new());

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

    let app = app(&root).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await
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
