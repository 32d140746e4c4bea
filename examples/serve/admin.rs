//! `--admin HOST:PORT`: a live page to watch and steer the downloads, and the
//! JSON API behind it, for scripts too.
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /` | the page (`admin.html`: no build step, no framework; it polls the API) |
//! | `GET /api/downloads` | the running downloads: `[{"id", "client", "path", "status", "sent", "length", "rate", "elapsed"}]`, `rate` in bytes per second or `null` (not known yet) |
//! | `POST /api/downloads/{id}/cancel` | ends download `id` at once (its client sees the connection close; observers see `cancelled`); 404 if it does not run |
//! | `GET /api/limits` | `{"total_rate": N, "client_rate": N}`, `null` = unlimited |
//! | `PUT /api/limits` | the same object (either field may be left out: unchanged); running downloads follow at once |
//! | `GET /api/stats` | totals (`active`, `ended`, `outcomes`, `sent`), `history` (bytes sent each second, last five minutes) and `limits` |
//!
//! Errors are JSON: `{"status": 400, "error": "...", "field": "total_rate"}`
//! (`field` for bad input only).
//!
//! Access: the admin listens on loopback unless `--admin-token TOKEN` is set;
//! with a token, every API request needs `Authorization: Bearer TOKEN`
//! (compared in constant time), else 401. The page itself holds no data and is
//! served to anyone who reaches the port; it sends the token it finds in its
//! URL's fragment (`/#token=TOKEN`, never sent to the server or logged) or asks
//! for it. A non-loopback `--admin` without a token is refused at start.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_range_serve::{Bandwidth, BandwidthControl};

use crate::downloads::Downloads;

/// The page, built into the binary.
const PAGE: &str = include_str!("admin.html");

/// What the admin steers.
#[derive(Clone)]
pub(crate) struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    downloads: Downloads,
    control: BandwidthControl,
    token: Option<String>,
}

impl Admin {
    pub(crate) fn new(
        downloads: Downloads,
        control: BandwidthControl,
        token: Option<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                downloads,
                control,
                token,
            }),
        }
    }
}

/// Refuses an admin reachable from other machines without a token.
pub(crate) fn check(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    match token {
        Some("") => Err("--admin-token must not be empty".to_owned()),
        None if !addr.ip().is_loopback() => Err(format!(
            "--admin {addr} is not a loopback address: set --admin-token TOKEN \
             (every request then needs `Authorization: Bearer TOKEN`), or listen on 127.0.0.1"
        )),
        _ => Ok(()),
    }
}

/// Serves the page and the API on `addr`, in a task; fails if it cannot
/// listen there.
pub(crate) async fn serve(addr: SocketAddr, admin: Admin) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--admin {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(admin.inner.downloads.clone().sample());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(admin)).await;
    });
    Ok(bound)
}

/// The page and the API.
pub(crate) fn router(admin: Admin) -> Router {
    let api = Router::new()
        .route("/api/downloads", get(list))
        .route("/api/downloads/{id}/cancel", post(cancel))
        .route("/api/limits", get(limits).put(set_limits))
        .route("/api/stats", get(stats))
        .route_layer(middleware::from_fn_with_state(admin.clone(), authorize));
    Router::new()
        .route("/", get(page))
        .merge(api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint", None) })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", None)
        })
        .with_state(admin)
}

/// A JSON error.
fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let mut body = json!({ "status": status.as_u16(), "error": message });
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    (status, json_body(&body)).into_response()
}

/// A JSON body.
fn json_body(value: &Value) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

/// With a token, lets through only requests that carry it.
async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    if let Some(token) = &admin.inner.token {
        let given = bearer(request.headers()).unwrap_or_default();
        // Constant time over the token's bytes (its length is not secret).
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            let mut response = error(StatusCode::UNAUTHORIZED, "a bearer token is required", None);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
            return response;
        }
    }
    next.run(request).await
}

/// The token of `Authorization: Bearer TOKEN`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}

async fn list(State(admin): State<Admin>) -> impl IntoResponse {
    json_body(&admin.inner.downloads.list())
}

async fn cancel(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "id must be a download's number",
            Some("id"),
        );
    };
    match admin.inner.downloads.cancel(id) {
        true => json_body(&json!({ "cancelled": id })).into_response(),
        false => error(
            StatusCode::NOT_FOUND,
            "no such download is running",
            Some("id"),
        ),
    }
}

/// A rate as JSON: bytes per second, `null` for unlimited.
fn rate(rate: Bandwidth) -> Value {
    match rate.is_unlimited() {
        true => Value::Null,
        false => json!(rate.bytes_per_second()),
    }
}

fn current_limits(control: &BandwidthControl) -> Value {
    json!({
        "total_rate": rate(control.total_rate()),
        "client_rate": rate(control.client_rate()),
    })
}

async fn limits(State(admin): State<Admin>) -> impl IntoResponse {
    json_body(&current_limits(&admin.inner.control))
}

async fn set_limits(State(admin): State<Admin>, body: Bytes) -> Response {
    let changes = match parse_limits(&body) {
        Ok(changes) => changes,
        Err((message, field)) => return error(StatusCode::BAD_REQUEST, &message, field),
    };
    let control = &admin.inner.control;
    if let Some(total) = changes.total_rate {
        control.set_total_rate(total);
    }
    if let Some(client) = changes.client_rate {
        control.set_client_rate(client);
    }
    json_body(&current_limits(control)).into_response()
}

/// The changes a `PUT /api/limits` asks for: `None` leaves a limit as it is.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) total_rate: Option<Bandwidth>,
    pub(crate) client_rate: Option<Bandwidth>,
}

/// Reads `{"total_rate": N|null, "client_rate": N|null}`; an error names the
/// field at fault.
pub(crate) fn parse_limits(body: &[u8]) -> Result<Limits, (String, Option<&'static str>)> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| (format!("the body is not JSON: {e}"), None))?;
    let Value::Object(object) = value else {
        return Err(("the body must be a JSON object".to_owned(), None));
    };
    let mut limits = Limits::default();
    for (key, value) in &object {
        let field = match key.as_str() {
            "total_rate" => "total_rate",
            "client_rate" => "client_rate",
            _ => {
                return Err((
                    format!("unknown field {key:?}: expected total_rate, client_rate"),
                    None,
                ));
            }
        };
        let rate = parse_rate(value).map_err(|message| (message, Some(field)))?;
        match field {
            "total_rate" => limits.total_rate = Some(rate),
            _ => limits.client_rate = Some(rate),
        }
    }
    if object.is_empty() {
        return Err(("expected total_rate or client_rate".to_owned(), None));
    }
    Ok(limits)
}

/// A rate in bytes per second (at least 1), or `null` for unlimited.
fn parse_rate(value: &Value) -> Result<Bandwidth, String> {
    match value {
        Value::Null => Ok(Bandwidth::UNLIMITED),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Err("must be at least 1 byte per second (null is unlimited)".to_owned()),
            Some(n) => Ok(Bandwidth::new(n)),
            None => Err("must be a whole number of bytes per second, or null".to_owned()),
        },
        _ => Err("must be a number of bytes per second, or null".to_owned()),
    }
}

async fn stats(State(admin): State<Admin>) -> impl IntoResponse {
    let mut stats = admin.inner.downloads.stats();
    stats["limits"] = current_limits(&admin.inner.control);
    json_body(&stats)
}
