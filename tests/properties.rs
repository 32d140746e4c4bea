//! Invariants over random representations and random `Range` headers.

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use proptest::prelude::*;
use support::{parse_content_range, parse_multipart};
use tower::{ServiceExt, service_fn};
use tower_range_serve::{FileResponse, RangeServe};

/// What one request got: status, the headers that matter, and the body.
struct Answer {
    status: StatusCode,
    content_length: u64,
    content_range: Option<String>,
    content_type: String,
    body: Bytes,
}

fn fetch(data: &Bytes, range: &str, chunk_size: usize) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let data = data.clone();
        let service = tower::Layer::layer(
            &tower_range_serve::RangeServeLayer::new().chunk_size(chunk_size),
            service_fn(move |_req| {
                let data = data.clone();
                async move { Ok::<_, Infallible>(FileResponse::from_bytes(data).into_response()) }
            }),
        );
        let request = Request::get("/")
            .header("range", range)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
        };
        Answer {
            status: response.status(),
            content_length: header("content-length").unwrap().parse().unwrap(),
            content_range: header("content-range"),
            content_type: header("content-type").unwrap_or_default(),
            body: response.into_body().collect().await.unwrap().to_bytes(),
        }
    })
}

fn spec() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..3000, 0u64..3000).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (0u64..3000).prop_map(|a| format!("{a}-")),
        (0u64..3000).prop_map(|n| format!("-{n}")),
        Just("garbage".to_owned()),
    ]
}

fn header() -> impl Strategy<Value = String> {
    proptest::collection::vec(spec(), 1..6).prop_map(|specs| format!("bytes={}", specs.join(", ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_answer_carries_the_right_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2500).prop_map(Bytes::from),
        range in header(),
        chunk_size in 1usize..700,
    ) {
        let answer = fetch(&data, &range, chunk_size);
        prop_assert_eq!(answer.content_length, answer.body.len() as u64);
        let len = data.len() as u64;
        match answer.status {
            StatusCode::OK => {
                prop_assert_eq!(&answer.body, &data);
                prop_assert!(answer.content_range.is_none());
            }
            StatusCode::PARTIAL_CONTENT => {
                prop_assert!(answer.body.len() <= data.len() + 4096, "bounded overhead");
                let ranges: Vec<(String, Vec<u8>)> = match answer.content_range {
                    Some(content_range) => vec![(content_range, answer.body.to_vec())],
                    None => parse_multipart(&answer.content_type, &answer.body)
                        .into_iter()
                        .map(|part| (part.content_range, part.body))
                        .collect(),
                };
                let mut seen: Vec<(u64, u64)> = Vec::new();
                for (content_range, body) in ranges {
                    let (first, last, complete) = parse_content_range(&content_range);
                    prop_assert_eq!(complete, len);
                    prop_assert!(first <= last && last < len);
                    prop_assert_eq!(&body[..], &data[first as usize..=last as usize]);
                    // Parts never overlap or touch: they were coalesced.
                    for &(a, b) in &seen {
                        prop_assert!(last + 1 < a || b + 1 < first, "{seen:?} {first}-{last}");
                    }
                    seen.push((first, last));
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                prop_assert_eq!(answer.content_range, Some(format!("bytes */{len}")));
                prop_assert!(answer.body.is_empty());
                prop_assert!(len > 0);
            }
            other => prop_assert!(false, "unexpected status {}", other),
        }
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let data = Bytes::from_static(b"0123456789");
        if let Ok(value) = http::HeaderValue::from_bytes(&raw) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let status = runtime.block_on(async {
                let service = RangeServe::new(service_fn(move |_req| {
                    let data = data.clone();
                    async move { Ok::<_, Infallible>(FileResponse::from_bytes(data).into_response()) }
                }));
                let mut request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
                for name in ["range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"] {
                    request.headers_mut().insert(name, value.clone());
                }
                service.oneshot(request).await.unwrap().status()
            });
            prop_assert!(matches!(status.as_u16(), 200 | 206 | 304 | 412 | 416));
        }
    }
}
