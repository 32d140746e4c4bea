//! One client, two tiers: streams that asked for different client rates keep
//! their own. And the observer hears of every answer, not only of bodies.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_range_serve::lifecycle::{Answer, Observer, Refusal};
use tower_range_serve::{Bandwidth, ClientKey, FileResponse, RangeServeLayer, ResponseBody};

const KIB: u64 = 1024;

type Served = ResponseBody<tower_range_serve::RangeBody>;

/// Files of `len` bytes, `len` taken from the path (`/1048576`), with the ETag
/// `"v1"`.
fn files(
    layer: &RangeServeLayer,
) -> impl Service<Request<Empty<Bytes>>, Response = Response<Served>, Error = Infallible> + Clone {
    layer.layer(service_fn(|req: Request<Empty<Bytes>>| async move {
        let len: usize = req.uri().path()[1..].parse().unwrap();
        let mut response = FileResponse::from_bytes(Bytes::from(vec![b'x'; len])).into_response();
        response
            .headers_mut()
            .insert("etag", http::HeaderValue::from_static("\"v1\""));
        Ok::<_, Infallible>(response)
    }))
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Empty::new()).unwrap()
}

/// The user from `x-user`, the tier from `x-tier` (set by an authentication
/// layer in a real application): free at 100 KiB/s, paid at 2 MiB/s per user.
fn tiered() -> RangeServeLayer {
    RangeServeLayer::new()
        .client_rate(Bandwidth::kib(100))
        .client_key(|parts| {
            let user = parts.headers.get("x-user")?.to_str().ok()?;
            Some(ClientKey::from(user))
        })
        .policy(|parts, policy| {
            if parts
                .headers
                .get("x-tier")
                .is_some_and(|tier| tier == "paid")
            {
                policy.client_rate = Bandwidth::mib(2);
            }
        })
}

/// Reads a body to the end; its length and when it ended.
async fn read(response: Response<Served>) -> (usize, Duration) {
    let start = Instant::now();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (bytes.len(), start.elapsed())
}

/// A free and a paid download of user m1 at once: the free one stays at
/// 100 KiB/s, the paid one gets 2 MiB/s. Before, the latest request's rate won
/// for both (the free one went at ~2 MiB/s).
#[tokio::test(start_paused = true)]
async fn a_free_and_a_paid_stream_of_one_user_keep_their_own_rates() {
    let layer = tiered();
    let free = files(&layer)
        .oneshot(request(Method::GET, "/204800", &[("x-user", "m1")]))
        .await
        .unwrap();
    let paid = files(&layer)
        .oneshot(request(
            Method::GET,
            "/4194304",
            &[("x-user", "m1"), ("x-tier", "paid")],
        ))
        .await
        .unwrap();
    let (free, paid) = tokio::join!(read(free), read(paid));
    // 200 KiB at 100 KiB/s: 2 s, less the first 100 ms of budget and a chunk.
    assert_eq!(free.0, 200 * 1024);
    assert!(free.1 >= Duration::from_millis(1800), "{:?}", free.1);
    assert!(free.1 <= Duration::from_millis(2100), "{:?}", free.1);
    // 4 MiB at 2 MiB/s: 2 s, less the same.
    assert_eq!(paid.0, 4 << 20);
    assert!(paid.1 >= Duration::from_millis(1800), "{:?}", paid.1);
    assert!(paid.1 <= Duration::from_millis(2100), "{:?}", paid.1);
}

/// Two free streams of one user still share the user's free rate.
#[tokio::test(start_paused = true)]
async fn streams_of_one_tier_share_its_rate() {
    let layer = tiered();
    let get = || files(&layer).oneshot(request(Method::GET, "/102400", &[("x-user", "m1")]));
    let (a, b) = tokio::join!(get(), get());
    let (a, b) = tokio::join!(read(a.unwrap()), read(b.unwrap()));
    // 200 KiB in all at 100 KiB/s.
    for (len, took) in [a, b] {
        assert_eq!(len as u64, 100 * KIB);
        assert!(took >= Duration::from_millis(1800), "{took:?}");
    }
}

/// Records every answer.
#[derive(Default)]
struct Answers(Mutex<Vec<Answer>>);

impl Observer for Answers {
    fn answer(&self, answer: &Answer) {
        self.0.lock().unwrap().push(answer.clone());
    }
}

impl Answers {
    fn take(&self) -> Vec<(Method, StatusCode, Option<Refusal>, u64, bool)> {
        let answers = std::mem::take(&mut *self.0.lock().unwrap());
        answers
            .into_iter()
            .map(|a| (a.method, a.status, a.refusal, a.body, a.download.is_some()))
            .collect()
    }
}

#[tokio::test]
async fn every_answer_is_observed_with_its_status_and_client() {
    let answers = Arc::new(Answers::default());
    let layer = RangeServeLayer::new()
        .observer(answers.clone())
        .max_streams_per_client(1)
        .client_key(|parts| Some(ClientKey::from(parts.headers.get("x-user")?.to_str().ok()?)));
    let service = files(&layer);
    let send = |method: Method, headers: &[(&str, &str)]| {
        let mut headers = headers.to_vec();
        headers.push(("x-user", "m1"));
        service.clone().oneshot(request(method, "/100", &headers))
    };
    let head = send(Method::HEAD, &[]).await.unwrap();
    assert_eq!(head.headers()["etag"], "\"v1\"");
    let etag = "\"v1\"";

    type Case<'a> = (Method, &'a [(&'a str, &'a str)], StatusCode);
    let cases: &[Case] = &[
        (
            Method::GET,
            &[("if-none-match", etag)],
            StatusCode::NOT_MODIFIED,
        ),
        (
            Method::GET,
            &[("if-match", "\"other\"")],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            Method::GET,
            &[("range", "bytes=500-")],
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        (
            Method::HEAD,
            &[("range", "bytes=0-9")],
            StatusCode::PARTIAL_CONTENT,
        ),
    ];
    for (method, headers, status) in cases {
        let response = send(method.clone(), headers).await.unwrap();
        assert_eq!(response.status(), *status);
    }
    // A running download, then a 429 for the second stream (and its HEAD).
    let running = send(Method::GET, &[("range", "bytes=0-9")]).await.unwrap();
    assert_eq!(running.status(), StatusCode::PARTIAL_CONTENT);
    let refused = send(Method::GET, &[]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let refused_head = send(Method::HEAD, &[]).await.unwrap();
    assert_eq!(refused_head.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(running);
    // Shutting down: 503.
    layer.shutdown_handle().begin(Duration::from_secs(1));
    let unavailable = send(Method::GET, &[]).await.unwrap();
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);

    use Method as M;
    use StatusCode as S;
    assert_eq!(
        answers.take(),
        [
            (M::HEAD, S::OK, None, 0, false),
            (M::GET, S::NOT_MODIFIED, None, 0, false),
            (M::GET, S::PRECONDITION_FAILED, None, 0, false),
            (M::GET, S::RANGE_NOT_SATISFIABLE, None, 0, false),
            (M::HEAD, S::PARTIAL_CONTENT, None, 0, false),
            (M::GET, S::PARTIAL_CONTENT, None, 10, true),
            (
                M::GET,
                S::TOO_MANY_REQUESTS,
                Some(Refusal::TooManyStreams),
                0,
                false
            ),
            (
                M::HEAD,
                S::TOO_MANY_REQUESTS,
                Some(Refusal::TooManyStreams),
                0,
                false
            ),
            (
                M::GET,
                S::SERVICE_UNAVAILABLE,
                Some(Refusal::ShuttingDown),
                0,
                false
            ),
        ]
    );
}

#[tokio::test]
async fn answers_carry_the_client_and_the_path() {
    let answers = Arc::new(Answers::default());
    let layer = RangeServeLayer::new()
        .observer(answers.clone())
        .client_key(|_| Some(ClientKey::from("m1")));
    let response = files(&layer)
        .oneshot(request(Method::HEAD, "/7", &[]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = answers.0.lock().unwrap().pop().unwrap();
    assert_eq!(answer.client, Some(ClientKey::from("m1")));
    assert_eq!(answer.path, "/7");
}
