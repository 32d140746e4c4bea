//! `ServeObjects::open_cache`: opened objects' heads kept for a short time, an
//! overwritten object forgotten after the download it failed, missing keys
//! remembered for the validity only.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use tower::{Layer, ServiceExt};
use tower_range_serve::RangeServeLayer;
use tower_range_serve::dir::OpenFileCache;
use tower_range_serve::objects::ServeObjects;

const VALIDITY: std::time::Duration = OpenFileCache::DEFAULT_VALIDITY;

async fn get(
    objects: &ServeObjects,
    path: &str,
) -> (StatusCode, Option<String>, Result<Bytes, ()>) {
    let request = Request::get(path).body(Empty::<Bytes>::new()).unwrap();
    let response = RangeServeLayer::new()
        .layer(objects.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|etag| etag.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await;
    (status, etag, body.map(|b| b.to_bytes()).map_err(|_| ()))
}

async fn put(store: &InMemory, key: &str, bytes: &'static [u8]) {
    store
        .put(&Path::from(key), PutPayload::from_static(bytes))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_object_overwritten_while_cached_fails_one_download_then_is_opened_again() {
    let store = Arc::new(InMemory::new());
    put(&store, "a.txt", b"version one").await;
    let objects = ServeObjects::new(store.clone()).open_cache(OpenFileCache::new());
    let (status, first_etag, body) = get(&objects, "/a.txt").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap(), "version one");
    assert_eq!(objects.cached_entries(), 1);

    put(&store, "a.txt", b"the second version").await;
    // The cached head: the old version's validators, and a body that fails
    // rather than mix versions.
    let (status, etag, body) = get(&objects, "/a.txt").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(etag, first_etag);
    assert!(body.is_err());
    // Forgotten after that failure: opened again at once.
    let (_, etag, body) = get(&objects, "/a.txt").await;
    assert_ne!(etag, first_etag);
    assert_eq!(body.unwrap(), "the second version");
}

#[tokio::test(start_paused = true)]
async fn missing_keys_are_remembered_for_the_validity_only() {
    let store = Arc::new(InMemory::new());
    let objects = ServeObjects::new(store.clone()).open_cache(OpenFileCache::new());
    assert_eq!(get(&objects, "/later.txt").await.0, StatusCode::NOT_FOUND);
    put(&store, "later.txt", b"here now").await;
    assert_eq!(get(&objects, "/later.txt").await.0, StatusCode::NOT_FOUND);
    tokio::time::advance(VALIDITY).await;
    let (status, _, body) = get(&objects, "/later.txt").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap(), "here now");
}

#[tokio::test(start_paused = true)]
async fn without_the_cache_an_overwrite_is_seen_at_once() {
    let store = Arc::new(InMemory::new());
    put(&store, "a.txt", b"one").await;
    let objects = ServeObjects::new(store.clone());
    assert_eq!(get(&objects, "/a.txt").await.2.unwrap(), "one");
    put(&store, "a.txt", b"two").await;
    assert_eq!(get(&objects, "/a.txt").await.2.unwrap(), "two");
    assert_eq!(objects.cached_entries(), 0);
}
