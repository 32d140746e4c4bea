//! `CancelHandle` ends a running download (even one parked on its throttle),
//! and `End::throttled` tells how long a body waited for its throttle.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::{Layer, ServiceExt, service_fn};
use tower_range_serve::lifecycle::{CancelHandle, Download, End, Observer, Outcome};
use tower_range_serve::{Bandwidth, FileResponse, RangeServeLayer};

/// Keeps the running downloads' handles and the ends.
#[derive(Default)]
struct Admin {
    running: Mutex<Vec<(u64, CancelHandle)>>,
    ends: Mutex<Vec<End>>,
}

impl Observer for Admin {
    fn start(&self, download: &Download) {
        let handle = download.cancel_handle();
        self.running.lock().unwrap().push((download.id, handle));
    }

    fn end(&self, download: &Download, end: &End) {
        self.running
            .lock()
            .unwrap()
            .retain(|(id, _)| *id != download.id);
        self.ends.lock().unwrap().push(*end);
    }
}

async fn download(
    layer: RangeServeLayer,
    len: usize,
) -> http::Response<tower_range_serve::ResponseBody<tower_range_serve::RangeBody>> {
    let data = Bytes::from(vec![1u8; len]);
    let service = layer.layer(service_fn(move |_: Request<Empty<Bytes>>| {
        let data = data.clone();
        async move { Ok::<_, Infallible>(FileResponse::from_bytes(data).into_response()) }
    }));
    let request = Request::get("/big.bin").body(Empty::new()).unwrap();
    service.oneshot(request).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_cancel_wakes_a_download_parked_on_its_throttle_and_ends_it() {
    let admin = Arc::new(Admin::default());
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(16))
        .observer(admin.clone());
    let response = download(layer, 1 << 20).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    let handle = admin.running.lock().unwrap()[0].1.clone();
    let cancel = async {
        // The body is parked on its throttle (a second per 16 KiB chunk).
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.cancel();
    };
    let started = tokio::time::Instant::now();
    let (frame, ()) = tokio::join!(body.frame(), cancel);
    let error = frame.unwrap().unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "ended at once"
    );
    let error = error.downcast::<std::io::Error>().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
    assert!(body.frame().await.is_none());
    let ends = admin.ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].outcome, Outcome::Cancelled);
    assert!(admin.running.lock().unwrap().is_empty());
    assert!(handle.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_throttled_download_reports_its_wait_and_an_unthrottled_one_none() {
    let admin = Arc::new(Admin::default());
    let layer = RangeServeLayer::new()
        .rate(Bandwidth::kib(64))
        .observer(admin.clone());
    let body = download(layer, 256 * 1024).await.into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes().len(), 256 * 1024);
    let layer = RangeServeLayer::new().observer(admin.clone());
    let body = download(layer, 256 * 1024).await.into_body();
    assert_eq!(body.collect().await.unwrap().to_bytes().len(), 256 * 1024);
    let ends = admin.ends.lock().unwrap();
    // Time advances only while the body waits for its throttle: all of a
    // throttled download's time is waiting, about 4 s for 256 KiB at 64 KiB/s
    // (the first chunk goes at once).
    assert!(ends[0].elapsed >= Duration::from_secs(3), "{:?}", ends[0]);
    assert_eq!(ends[0].throttled, ends[0].elapsed);
    assert_eq!(ends[1].throttled, Duration::ZERO);
    assert!(ends.iter().all(|end| end.outcome == Outcome::Complete));
}
