//! `ServeDir`'s directories: index files, the slash redirect, listings (HTML
//! and JSON) and the fallback, through `RangeServeLayer` over a real server.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use support::{Fetched, get, request, send, serve};
use tower::Layer;
use tower_range_serve::{FileResponse, RangeBody, RangeServeLayer, ServeDir};

const SECRET: &str = "top secret outside the root";
const TRICKY: &str = "<b>x&y.txt";

struct Tree {
    _outside: tempfile::TempDir,
    root: tempfile::TempDir,
}

/// A root with a file whose name needs escaping, hidden files, a directory with
/// an index and one without, and links pointing inside and outside the root.
fn tree() -> Tree {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), SECRET).unwrap();
    let root = tempfile::tempdir().unwrap();
    let path = |name: &str| root.path().join(name);
    std::fs::write(path(TRICKY), "tricky").unwrap();
    std::fs::write(path("hello.txt"), "hello").unwrap();
    std::fs::write(path("100%.txt"), "percent").unwrap();
    std::fs::write(path(".hidden"), "hidden").unwrap();
    std::fs::create_dir(path("sub")).unwrap();
    std::fs::write(path("sub/nested file.txt"), "nested").unwrap();
    std::fs::create_dir(path("site")).unwrap();
    std::fs::write(path("site/index.html"), "<h1>site</h1>").unwrap();
    std::fs::write(path("site/home.htm"), "<h1>home</h1>").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(outside.path().join("secret.txt"), path("escape.txt")).unwrap();
        symlink(outside.path(), path("escape-dir")).unwrap();
        symlink(path("hello.txt"), path("inside.txt")).unwrap();
        symlink(path("missing"), path("dangling")).unwrap();
    }
    Tree {
        _outside: outside,
        root,
    }
}

async fn server(dir: ServeDir) -> SocketAddr {
    serve(RangeServeLayer::new().layer(dir)).await
}

/// The entry names of a JSON listing.
fn json_names(f: &Fetched) -> Vec<String> {
    let entries: serde_json::Value = serde_json::from_slice(f.bytes()).unwrap();
    let entries = entries.as_array().unwrap().iter();
    entries
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn text(f: &Fetched) -> String {
    String::from_utf8(f.bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn the_html_listing_escapes_names_and_encodes_links() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    let f = send(addr, get("/", &[])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(f.header("cache-control"), "no-cache");
    let page = text(&f);
    assert!(
        page.contains("<a href=\"%3Cb%3Ex%26y.txt\">&lt;b&gt;x&amp;y.txt</a>"),
        "{page}"
    );
    assert!(!page.contains("<b>"), "{page}");
    // Directories first, with a slash; files after, by name, with their sizes.
    let site = page.find("href=\"site/\"").unwrap();
    let sub = page.find("href=\"sub/\"").unwrap();
    let hello = page.find("href=\"hello.txt\"").unwrap();
    assert!(site < sub && sub < hello, "{page}");
    assert!(page.contains("<td class=\"size\">5</td>"), "{page}");
    // The root has no parent link.
    assert!(!page.contains("href=\"../\""), "{page}");
    // The links lead to the files.
    let f = send(addr, get("/%3Cb%3Ex%26y.txt", &[])).await;
    assert_eq!(text(&f), "tricky");
    assert!(
        page.contains("<a href=\"100%25.txt\">100%.txt</a>"),
        "{page}"
    );
    assert_eq!(text(&send(addr, get("/100%25.txt", &[])).await), "percent");
}

#[tokio::test]
async fn hidden_files_are_left_out_unless_asked_for() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    let page = text(&send(addr, get("/", &[])).await);
    assert!(!page.contains(".hidden"), "{page}");
    // Still served when asked for by name.
    assert_eq!(text(&send(addr, get("/.hidden", &[])).await), "hidden");
    let shown = ServeDir::new(tree.root.path())
        .listing(true)
        .show_hidden(true);
    let addr = server(shown).await;
    let page = text(&send(addr, get("/", &[])).await);
    assert!(page.contains("href=\".hidden\""), "{page}");
}

#[cfg(unix)]
#[tokio::test]
async fn links_are_listed_only_where_they_could_be_served() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    let page = text(&send(addr, get("/", &[])).await);
    assert!(page.contains("href=\"inside.txt\""), "{page}");
    for absent in ["escape.txt", "escape-dir", "dangling", "secret"] {
        assert!(!page.contains(absent), "{absent}: {page}");
    }
    // A listing of the directory behind an outside link is as missing as the link.
    let f = send(addr, get("/escape-dir/", &[])).await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    assert!(!text(&f).contains("secret"));
}

#[tokio::test]
async fn the_json_listing_parses() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    let f = send(addr, get("/sub/", &[("accept", "application/json")])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-type"), "application/json");
    assert_eq!(f.header("vary"), "accept");
    let entries: serde_json::Value = serde_json::from_slice(f.bytes()).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["name"], "nested file.txt");
    assert_eq!(entry["url"], "nested%20file.txt");
    assert_eq!(entry["is_dir"], false);
    assert_eq!(entry["is_symlink"], false);
    assert_eq!(entry["size"], 6);
    let modified = entry["mod_time"].as_str().unwrap();
    assert!(
        modified.len() == 20 && modified.ends_with('Z'),
        "{modified}"
    );

    let f = send(addr, get("/", &[("accept", "application/json")])).await;
    let names = json_names(&f);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(&names[..2], ["site", "sub"]);
    assert!(names.contains(&TRICKY));
    // A browser's Accept gets HTML.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let f = send(addr, get("/", &[("accept", browser)])).await;
    assert_eq!(f.header("content-type"), "text/html; charset=utf-8");
}

#[tokio::test]
async fn listings_are_not_range_served_and_have_a_parent_link() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    let f = send(addr, get("/sub/", &[("range", "bytes=0-3")])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(!f.headers.contains_key("accept-ranges"));
    assert!(!f.headers.contains_key("etag"));
    let page = text(&f);
    assert!(page.contains("<a href=\"../\">"), "{page}");
    assert!(page.contains("Index of /sub/"), "{page}");
    assert!(
        page.contains("<a href=\"nested%20file.txt\">nested file.txt</a>"),
        "{page}"
    );
    let f = send(addr, request("HEAD", "/sub/", &[])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(f.bytes().is_empty());
}

#[tokio::test]
async fn a_directory_without_its_slash_redirects_keeping_the_query() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).listing(true)).await;
    for (path, location) in [
        ("/sub", "sub/"),
        ("/sub?sort=name&x=%20", "sub/?sort=name&x=%20"),
        ("/site", "site/"),
    ] {
        let f = send(addr, get(path, &[])).await;
        assert_eq!(f.status, StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(f.header("location"), location, "{path}");
        assert!(f.bytes().is_empty());
    }
    // Without an index or a listing there is nothing to redirect to.
    let addr = server(ServeDir::new(tree.root.path())).await;
    assert_eq!(
        send(addr, get("/sub", &[])).await.status,
        StatusCode::NOT_FOUND
    );
    let f = send(addr, get("/site?a=1", &[])).await;
    assert_eq!(f.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(f.header("location"), "site/?a=1");
}

#[tokio::test]
async fn a_directory_serves_its_index_with_ranges() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    let f = send(addr, get("/site/", &[])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-type"), "text/html");
    assert_eq!(text(&f), "<h1>site</h1>");
    let f = send(addr, get("/site/", &[("range", "bytes=4-7")])).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(text(&f), "site");
    // Another name, or none (then the listing, when on).
    let addr = server(ServeDir::new(tree.root.path()).index(Some("home.htm"))).await;
    assert_eq!(text(&send(addr, get("/site/", &[])).await), "<h1>home</h1>");
    let addr = server(ServeDir::new(tree.root.path()).index(None)).await;
    let f = send(addr, get("/site/", &[])).await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    let addr = server(ServeDir::new(tree.root.path()).index(None).listing(true)).await;
    let page = text(&send(addr, get("/site/", &[])).await);
    assert!(page.contains("href=\"index.html\""), "{page}");
}

#[test]
#[should_panic(expected = "an index must be a plain file name")]
fn an_index_must_be_a_plain_name() {
    let _ = ServeDir::new("x").index(Some("../index.html"));
}

#[tokio::test]
async fn the_fallback_answers_what_finds_nothing_through_the_layer() {
    let tree = tree();
    // A single-page app's index for every path that finds nothing.
    let index = tree.root.path().join("site/index.html");
    let fallback = tower::service_fn(move |_: Request<hyper::body::Incoming>| {
        let index = index.clone();
        async move {
            let file = FileResponse::open(&index).await.unwrap();
            Ok::<Response<RangeBody>, Infallible>(file.into_response())
        }
    });
    let addr = server_with(ServeDir::new(tree.root.path()).fallback(fallback)).await;
    for path in ["/app/route", "/sub/", "/../etc/passwd", "/missing.txt"] {
        let f = send(addr, get(path, &[])).await;
        assert_eq!(f.status, StatusCode::OK, "{path}");
        assert_eq!(text(&f), "<h1>site</h1>", "{path}");
    }
    // A file-backed fallback answer is range-served like any other.
    let f = send(addr, get("/app/route", &[("range", "bytes=4-7")])).await;
    assert_eq!(f.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(text(&f), "site");
    // Files are still files, and other methods still get 405.
    assert_eq!(text(&send(addr, get("/hello.txt", &[])).await), "hello");
    let f = send(addr, request("POST", "/missing.txt", &[])).await;
    assert_eq!(f.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_custom_404_page_is_sent_as_it_is() {
    let tree = tree();
    let not_found = tower::service_fn(|_: Request<hyper::body::Incoming>| async {
        let mut page =
            FileResponse::from_bytes(Bytes::from_static(b"no such page")).into_response();
        *page.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(page)
    });
    let addr = server_with(ServeDir::new(tree.root.path()).fallback(not_found)).await;
    let f = send(addr, get("/missing", &[("range", "bytes=0-1")])).await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
    assert_eq!(text(&f), "no such page");
}

async fn server_with<F>(dir: ServeDir<F>) -> SocketAddr
where
    F: tower::Service<
            Request<hyper::body::Incoming>,
            Response = Response<RangeBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    F::Future: Send + 'static,
{
    serve(RangeServeLayer::new().layer(dir)).await
}

#[tokio::test]
async fn with_every_feature_on_nothing_outside_the_root_leaks() {
    let tree = tree();
    std::fs::write(
        tree._outside.path().join("secret.txt.gz"),
        format!("{SECRET} (gzip)"),
    )
    .unwrap();
    let dir = ServeDir::new(tree.root.path())
        .listing(true)
        .show_hidden(true)
        .precompressed(tower_range_serve::dir::Encoding::ALL);
    let addr = server(dir).await;
    let outside = tree._outside.path().file_name().unwrap().to_str().unwrap();
    let up = format!("/../{outside}/");
    let up_encoded = format!("/%2e%2e/{outside}/secret.txt");
    let up_slash = format!("/..%2f{outside}%2f");
    for path in [
        "/",
        "/sub/",
        "/escape.txt",
        "/escape-dir",
        "/escape-dir/",
        "/escape-dir/secret.txt",
        up.as_str(),
        &up_encoded,
        &up_slash,
    ] {
        for accept in ["application/json", "text/html"] {
            let headers = [("accept", accept), ("accept-encoding", "gzip, br")];
            let f = send(addr, get(path, &headers)).await;
            let body = String::from_utf8_lossy(f.bytes());
            assert!(!body.contains("secret"), "{path}: {body}");
            assert!(
                f.status == StatusCode::OK || f.status == StatusCode::NOT_FOUND,
                "{path}: {}",
                f.status
            );
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn names_no_request_can_reach_are_not_listed() {
    use std::os::unix::ffi::OsStrExt;
    let tree = tree();
    let root = tree.root.path();
    std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), "x").unwrap();
    std::fs::write(root.join("back\\slash"), "x").unwrap();
    std::fs::write(root.join("co:lon"), "x").unwrap();
    let addr = server(ServeDir::new(root).listing(true)).await;
    let f = send(addr, get("/", &[("accept", "application/json")])).await;
    let names = json_names(&f);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(names.contains(&"hello.txt"), "{names:?}");
    for absent in ["bad", "back", "co:lon"] {
        assert!(!names.iter().any(|n| n.contains(absent)), "{names:?}");
    }
}
