//! The directory service: what it serves and what it refuses, over a real server.

mod support;

use std::net::SocketAddr;

use http::StatusCode;
use support::{get, raw, request, send, serve};
use tower::Layer;
use tower_range_serve::{RangeServeLayer, ServeDir};

const SECRET: &str = "top secret outside the root";

struct Tree {
    _outside: tempfile::TempDir,
    root: tempfile::TempDir,
}

/// A root with files, a subdirectory, and links pointing inside and outside it.
fn tree() -> Tree {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), SECRET).unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), "hello").unwrap();
    std::fs::write(root.path().join("hello world.txt"), "spaced").unwrap();
    std::fs::write(root.path().join("café.txt"), "accent").unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/nested.txt"), "nested").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(
            outside.path().join("secret.txt"),
            root.path().join("escape.txt"),
        )
        .unwrap();
        symlink(outside.path(), root.path().join("escape-dir")).unwrap();
        symlink(
            root.path().join("hello.txt"),
            root.path().join("inside.txt"),
        )
        .unwrap();
    }
    Tree {
        _outside: outside,
        root,
    }
}

async fn server(dir: ServeDir) -> SocketAddr {
    serve(RangeServeLayer::new().layer(dir)).await
}

#[tokio::test]
async fn serves_files_by_decoded_path() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    for (path, body) in [
        ("/hello.txt", "hello"),
        ("/sub/nested.txt", "nested"),
        ("//sub/./nested.txt", "nested"),
        ("/hello%20world.txt", "spaced"),
        ("/caf%C3%A9.txt", "accent"),
        ("/sub%2Fnested.txt", "nested"),
    ] {
        let f = send(addr, get(path, &[])).await;
        assert_eq!(f.status, StatusCode::OK, "{path}");
        assert_eq!(f.bytes(), body, "{path}");
        assert_eq!(f.header("content-type"), "text/plain", "{path}");
    }
}

#[tokio::test]
async fn missing_files_and_directories_are_404() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    for path in [
        "/missing.txt",
        "/",
        "/sub",
        "/sub/",
        "/hello.txt/x",
        "/sub/missing",
    ] {
        let f = send(addr, get(path, &[])).await;
        assert_eq!(f.status, StatusCode::NOT_FOUND, "{path}");
        assert!(f.bytes().is_empty());
    }
}

#[tokio::test]
async fn traversal_in_every_spelling_is_404_and_leaks_nothing() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    let outside = tree._outside.path().file_name().unwrap().to_str().unwrap();
    let up = format!("/../{outside}/secret.txt");
    let up_encoded = format!("/%2e%2e/{outside}/secret.txt");
    let up_slash = format!("/..%2f{outside}%2fsecret.txt");
    let up_backslash = format!("/..%5c{outside}%5csecret.txt");
    let overlong = format!("/%c0%ae%c0%ae/{outside}/secret.txt");
    let absolute = format!("/{}", tree._outside.path().join("secret.txt").display());
    for path in [
        up.as_str(),
        &up_encoded,
        &up_slash,
        &up_backslash,
        &overlong,
        "/hello.txt%00.png",
        "/escape.txt",
        "/escape-dir/secret.txt",
        &absolute,
    ] {
        let f = send(addr, get(path, &[])).await;
        assert_eq!(f.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !String::from_utf8_lossy(f.bytes()).contains("secret"),
            "{path}"
        );
    }
    // Raw request targets that a client library would normalise.
    for target in [
        "/../../../../etc/passwd",
        "/sub/../../etc/passwd",
        "/..\\..\\etc\\passwd",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let response = String::from_utf8(raw(addr, request.as_bytes()).await).unwrap();
        assert!(response.starts_with("HTTP/1.1 404"), "{target}: {response}");
    }
    // And the server still answers.
    assert_eq!(send(addr, get("/hello.txt", &[])).await.bytes(), "hello");
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    assert_eq!(send(addr, get("/inside.txt", &[])).await.bytes(), "hello");
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_followed_only_when_asked() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path()).follow_symlinks(true)).await;
    assert_eq!(send(addr, get("/escape.txt", &[])).await.bytes(), SECRET);
    // `..` stays refused even then.
    let f = send(addr, get("/escape-dir/../hello.txt", &[])).await;
    assert_eq!(f.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let tree = tree();
    let addr = server(ServeDir::new(tree.root.path())).await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let f = send(
            addr,
            request(method, "/hello.txt", &[("range", "bytes=0-1")]),
        )
        .await;
        assert_eq!(f.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(f.header("allow"), "GET, HEAD");
        assert!(f.bytes().is_empty());
    }
}

#[tokio::test]
async fn without_the_layer_files_are_plain_downloads() {
    let tree = tree();
    let addr = serve(ServeDir::new(tree.root.path())).await;
    let f = send(addr, get("/hello.txt", &[("range", "bytes=0-1")])).await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(f.header("content-length"), "5");
    assert_eq!(f.bytes(), "hello");
}

/// On Linux a file whose path is in the dentry cache is looked up and read on
/// the calling thread (`openat2` with `RESOLVE_CACHED`, `preadv2` with
/// `RWF_NOWAIT`): with the only blocking thread taken, the request still gets
/// its answer. Through the pool it would wait for that thread.
#[cfg(target_os = "linux")]
#[test]
fn a_cached_file_is_served_without_the_blocking_pool() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let tree = tree();
    let path = tree.root.path().to_owned();
    std::fs::read(path.join("sub/nested.txt")).unwrap(); // cached
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (release, taken) = std::sync::mpsc::channel::<()>();
        let hog = tokio::task::spawn_blocking(move || taken.recv());
        let service = RangeServeLayer::new().layer(ServeDir::new(&path));
        let answer = async {
            let response = service.oneshot(get("/sub/nested.txt", &[])).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.into_body().collect().await.unwrap().to_bytes()
        };
        let body = tokio::time::timeout(std::time::Duration::from_secs(10), answer).await;
        release.send(()).unwrap();
        hog.await.unwrap().unwrap();
        assert_eq!(body.expect("answered without a blocking thread"), "nested");
    });
}
