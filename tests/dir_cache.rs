//! `ServeDir::open_file_cache`: files replaced, rewritten in place, deleted,
//! sidecars added and removed while cached; negative entries; the bounds on
//! entries and open descriptors.

use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::{Layer, ServiceExt};
use tower_range_serve::dir::{Encoding, OpenFileCache};
use tower_range_serve::{RangeServeLayer, ServeDir};

const VALIDITY: Duration = OpenFileCache::DEFAULT_VALIDITY;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn etag(&self) -> &str {
        self.headers["etag"].to_str().unwrap()
    }
}

async fn get(dir: &ServeDir, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let service = RangeServeLayer::new().layer(dir.clone());
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// The descriptors of this process open on `path` (deleted or not).
fn descriptors_on(path: &Path) -> usize {
    let path = path.to_str().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .filter(|target| target.to_str().is_some_and(|t| t.starts_with(path)))
                .count()
        })
        .unwrap_or(0)
}

/// Writes `bytes` over the file at `path` in place (same inode), with a
/// modification time of its own.
fn rewrite_in_place(path: &Path, bytes: &[u8], modified: SystemTime) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    file.set_modified(modified).unwrap();
}

/// Puts a new file (a new inode) at `path`, as deployments do: written beside
/// it, renamed over it.
fn replace(path: &Path, bytes: &[u8]) {
    let new = path.with_extension("new");
    std::fs::write(&new, bytes).unwrap();
    std::fs::rename(&new, path).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_file_rewritten_in_place_is_seen_by_the_next_request() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("page.html");
    // Larger than what is kept in memory: checked at every use.
    let one = vec![b'1'; LARGE];
    std::fs::write(&path, &one).unwrap();
    let dir = ServeDir::new(root.path());
    let first = get(&dir, "/page.html", &[]).await;
    assert_eq!(first.body, one);
    assert_eq!(dir.cached_entries(), 1);

    let later = SystemTime::now() + Duration::from_secs(10);
    rewrite_in_place(&path, &[b'2'; LARGE + 1], later);
    let second = get(&dir, "/page.html", &[]).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, vec![b'2'; LARGE + 1]);
    assert_eq!(second.headers["content-length"], (LARGE + 1).to_string());
    assert_ne!(second.etag(), first.etag());
}

#[tokio::test(start_paused = true)]
async fn a_cached_file_rewritten_under_a_response_never_splices_versions() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data.bin");
    std::fs::write(&path, vec![b'a'; LARGE]).unwrap();
    let dir = ServeDir::new(root.path());
    assert_eq!(get(&dir, "/data.bin", &[]).await.body.len(), LARGE);

    // Headers out, body not read yet: the file changes in place.
    let service = RangeServeLayer::new().layer(dir.clone());
    let request = Request::get("/data.bin")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-length"], LARGE.to_string());
    let later = SystemTime::now() + Duration::from_secs(10);
    rewrite_in_place(&path, &vec![b'b'; LARGE], later);
    assert!(response.into_body().collect().await.is_err());

    let next = get(&dir, "/data.bin", &[]).await;
    assert_eq!(next.body, vec![b'b'; LARGE]);
}

/// Longer than the files whose contents the cache keeps.
const LARGE: usize = OpenFileCache::KEPT_FILE_MAX as usize + 1;
const RECHECK: Duration = OpenFileCache::KEPT_RECHECK;

#[tokio::test(start_paused = true)]
async fn a_small_file_rewritten_in_place_is_seen_within_the_recheck_and_never_mixed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("icon.svg");
    std::fs::write(&path, vec![b'a'; 4096]).unwrap();
    let dir = ServeDir::new(root.path());
    let first = get(&dir, "/icon.svg", &[]).await;
    assert_eq!(first.body, vec![b'a'; 4096]);
    // Checked now: the next uses within the recheck read nothing.
    let checked = get(&dir, "/icon.svg", &[("range", "bytes=10-19")]).await;
    assert_eq!(checked.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(checked.body, vec![b'a'; 10]);

    // A response whose headers are out when the file changes in place.
    let service = RangeServeLayer::new().layer(dir.clone());
    let request = Request::get("/icon.svg")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let started = service.oneshot(request).await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(10);
    rewrite_in_place(&path, &[b'b'; 5000], later);

    // The old version, whole, under its own validators, for both.
    assert_eq!(started.headers()["etag"], first.etag());
    let body = started.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, vec![b'a'; 4096]);
    let within = get(&dir, "/icon.svg", &[]).await;
    assert_eq!(within.body, vec![b'a'; 4096]);
    assert_eq!(within.etag(), first.etag());
    assert_eq!(within.headers["content-length"], "4096");

    tokio::time::advance(RECHECK).await;
    let new = get(&dir, "/icon.svg", &[]).await;
    assert_eq!(new.body, vec![b'b'; 5000]);
    assert_eq!(new.headers["content-length"], "5000");
    assert_ne!(new.etag(), first.etag());
    // Ranges of the new version are the new bytes.
    let range = get(&dir, "/icon.svg", &[("range", "bytes=4990-")]).await;
    assert_eq!(range.body, vec![b'b'; 10]);
}

#[tokio::test(start_paused = true)]
async fn without_memory_a_small_file_changed_in_place_is_seen_at_once() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("icon.svg");
    std::fs::write(&path, "one").unwrap();
    let dir = ServeDir::new(root.path()).open_file_cache(OpenFileCache::new().memory(0));
    assert_eq!(get(&dir, "/icon.svg", &[]).await.body, "one");
    assert_eq!(get(&dir, "/icon.svg", &[]).await.body, "one");
    let later = SystemTime::now() + Duration::from_secs(10);
    rewrite_in_place(&path, b"two!", later);
    assert_eq!(get(&dir, "/icon.svg", &[]).await.body, "two!");
}

#[tokio::test(start_paused = true)]
async fn a_replaced_file_is_seen_within_the_validity_and_never_mixed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.js");
    std::fs::write(&path, "old()").unwrap();
    let dir = ServeDir::new(root.path());
    let old = get(&dir, "/app.js", &[]).await;
    assert_eq!(old.body, "old()");

    replace(&path, b"the new one()");
    // Within the validity: the old version, whole, with its own validators.
    let cached = get(&dir, "/app.js", &[]).await;
    assert_eq!(cached.body, "old()");
    assert_eq!(cached.etag(), old.etag());
    assert_eq!(cached.headers["content-length"], "5");

    tokio::time::advance(VALIDITY).await;
    let new = get(&dir, "/app.js", &[]).await;
    assert_eq!(new.body, "the new one()");
    assert_eq!(new.headers["content-length"], "13");
    assert_ne!(new.etag(), old.etag());
}

#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_deleted_file_is_gone_within_the_validity_and_its_descriptor_closed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("gone.txt");
    std::fs::write(&path, "soon gone").unwrap();
    let dir = ServeDir::new(root.path());
    assert_eq!(get(&dir, "/gone.txt", &[]).await.status, StatusCode::OK);
    assert_eq!(descriptors_on(&path), 1);

    std::fs::remove_file(&path).unwrap();
    // The sweeper closes it once expired, without another request.
    tokio::time::sleep(2 * VALIDITY).await;
    assert_eq!(descriptors_on(&path), 0);
    assert_eq!(dir.cached_entries(), 0);
    assert_eq!(
        get(&dir, "/gone.txt", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(start_paused = true)]
async fn missing_paths_are_remembered_for_the_validity_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = ServeDir::new(root.path());
    assert_eq!(
        get(&dir, "/later.txt", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    std::fs::write(root.path().join("later.txt"), "here now").unwrap();
    assert_eq!(
        get(&dir, "/later.txt", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    tokio::time::advance(VALIDITY).await;
    let found = get(&dir, "/later.txt", &[]).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body, "here now");
}

#[tokio::test(start_paused = true)]
async fn sidecars_added_or_removed_are_seen_within_the_validity() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("style.css"), "body { color: red }").unwrap();
    let dir = ServeDir::new(root.path()).precompressed([Encoding::Gzip]);
    let gzip = [("accept-encoding", "gzip")];
    let plain = get(&dir, "/style.css", &gzip).await;
    assert!(!plain.headers.contains_key("content-encoding"));
    assert!(!plain.headers.contains_key("vary"));

    std::fs::write(root.path().join("style.css.gz"), "gzip stand-in").unwrap();
    let cached = get(&dir, "/style.css", &gzip).await;
    assert!(!cached.headers.contains_key("content-encoding"));
    tokio::time::advance(VALIDITY).await;
    let variant = get(&dir, "/style.css", &gzip).await;
    assert_eq!(variant.headers["content-encoding"], "gzip");
    assert_eq!(variant.headers["vary"], "accept-encoding");
    assert_eq!(variant.body, "gzip stand-in");

    std::fs::remove_file(root.path().join("style.css.gz")).unwrap();
    // Still the variant, whole, until the validity is over.
    let cached = get(&dir, "/style.css", &gzip).await;
    assert_eq!(cached.body, "gzip stand-in");
    tokio::time::advance(VALIDITY).await;
    let plain = get(&dir, "/style.css", &gzip).await;
    assert!(!plain.headers.contains_key("content-encoding"));
    assert_eq!(plain.body, "body { color: red }");
}

/// A file remembers what the cache said of its sidecars, never longer than the
/// cache holds that answer: here the sidecar's (negative) entry is older than
/// the file's, and its end is when the new sidecar is seen.
#[tokio::test(start_paused = true)]
async fn a_file_remembers_its_sidecars_no_longer_than_the_cache_does() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("app.js"), "let a = 1;").unwrap();
    let dir = ServeDir::new(root.path()).precompressed([Encoding::Gzip]);
    let gzip = [("accept-encoding", "gzip")];
    // The sidecar's path, requested as such: a negative entry from now on.
    assert_eq!(
        get(&dir, "/app.js.gz", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    tokio::time::advance(VALIDITY / 2).await;
    // The file's entry is made now, and lasts half a validity longer.
    let plain = get(&dir, "/app.js", &gzip).await;
    assert!(!plain.headers.contains_key("content-encoding"));
    std::fs::write(root.path().join("app.js.gz"), "gzip stand-in").unwrap();
    tokio::time::advance(VALIDITY / 2 - Duration::from_millis(1)).await;
    let cached = get(&dir, "/app.js", &gzip).await;
    assert!(!cached.headers.contains_key("content-encoding"));
    tokio::time::advance(Duration::from_millis(1)).await;
    let variant = get(&dir, "/app.js", &gzip).await;
    assert_eq!(variant.headers["content-encoding"], "gzip");
    assert_eq!(variant.body, "gzip stand-in");
}

#[tokio::test(start_paused = true)]
async fn without_the_cache_every_change_is_seen_at_once() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("a.txt");
    std::fs::write(&path, "one").unwrap();
    let dir = ServeDir::new(root.path()).open_file_cache(OpenFileCache::off());
    assert_eq!(get(&dir, "/a.txt", &[]).await.body, "one");
    replace(&path, b"two");
    assert_eq!(get(&dir, "/a.txt", &[]).await.body, "two");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(get(&dir, "/a.txt", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(dir.cached_entries(), 0);
}

#[tokio::test]
async fn a_cached_answer_is_the_same_as_a_fresh_one() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.json"), "{}").unwrap();
    std::fs::write(root.path().join("a.json.br"), "br stand-in").unwrap();
    let cached = ServeDir::new(root.path()).precompressed(Encoding::ALL);
    let fresh = cached.clone().open_file_cache(OpenFileCache::off());
    for headers in [
        &[][..],
        &[("accept-encoding", "br")],
        &[("range", "bytes=1-")],
    ] {
        for _ in 0..2 {
            let a = get(&cached, "/a.json", headers).await;
            let b = get(&fresh, "/a.json", headers).await;
            assert_eq!(a.status, b.status, "{headers:?}");
            assert_eq!(a.headers, b.headers, "{headers:?}");
            assert_eq!(a.body, b.body, "{headers:?}");
        }
    }
    assert!(cached.cached_entries() > 0);
}

/// 100,000 distinct paths (2,000 files, the rest missing) through a cache of
/// 1,000 entries: never more entries, never more descriptors.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_bounds_hold_under_100000_distinct_paths() {
    const ENTRIES: usize = 1000;
    const FILES: usize = 2000;
    let root = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        std::fs::write(root.path().join(format!("f{i}")), i.to_string()).unwrap();
    }
    let dir = ServeDir::new(root.path()).open_file_cache(OpenFileCache::new().entries(ENTRIES));
    let service = RangeServeLayer::new().layer(dir.clone());
    let mut most_entries = 0;
    let mut most_descriptors = 0;
    let mut files = 0;
    for i in 0..100_000 {
        // One request in 50 for a file, each a different one.
        let path = if i % 50 == 0 {
            files += 1;
            format!("/f{}", files % FILES)
        } else {
            format!("/missing-{i}")
        };
        let request = Request::get(path).body(Empty::<Bytes>::new()).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        drop(response.into_body().collect().await.unwrap());
        if i % 1000 == 999 {
            most_entries = most_entries.max(dir.cached_entries());
            most_descriptors = most_descriptors.max(descriptors_on(root.path()));
        }
    }
    assert!(most_entries <= ENTRIES, "{most_entries} entries");
    assert!(most_entries > 0);
    assert!(
        most_descriptors <= ENTRIES,
        "{most_descriptors} descriptors"
    );
    assert!(most_descriptors > 0);
}

#[tokio::test(start_paused = true)]
async fn checksum_files_are_used_once_published_and_kept_with_the_opened_file() {
    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), "hello").unwrap();
    let dir = ServeDir::new(root.path());
    let want = [("want-repr-digest", "sha-256=10")];
    let first = get(&dir, "/hello.txt", &want).await;
    assert!(!first.headers.contains_key("repr-digest"));

    // Published after the first look: used at once.
    let checksum = root.path().join("hello.txt.sha256");
    std::fs::write(&checksum, format!("{HELLO_SHA256}  hello.txt\n")).unwrap();
    let digest = "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:";
    let published = get(&dir, "/hello.txt", &want).await;
    assert_eq!(published.headers["repr-digest"], digest);
    // Kept with the opened file (the digest of its unchanged bytes) for the
    // validity, then looked for again.
    std::fs::remove_file(&checksum).unwrap();
    let kept = get(&dir, "/hello.txt", &want).await;
    assert_eq!(kept.headers["repr-digest"], digest);
    tokio::time::advance(VALIDITY).await;
    let gone = get(&dir, "/hello.txt", &want).await;
    assert!(!gone.headers.contains_key("repr-digest"));
    // A request that does not ask gets none.
    assert!(
        !get(&dir, "/hello.txt", &[])
            .await
            .headers
            .contains_key("repr-digest")
    );
}
