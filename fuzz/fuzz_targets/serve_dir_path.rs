//! Any request path through `RangeServeLayer` + `ServeDir`: 200 only with the bytes
//! of a file inside the root, otherwise 404 (or 405 for other methods), and the
//! secret beside the root (reachable by `..` or through symbolic links) never leaks.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};
use tower_range_serve::{RangeServeLayer, ServeDir};

const SECRET: &[u8] = b"SECRET-OUTSIDE-THE-ROOT";
/// The files inside the root and their contents.
const FILES: [(&str, &[u8]); 3] = [
    ("hello.txt", b"hello from inside"),
    ("sub/nested.txt", b"nested inside"),
    ("a b/caf\u{e9}.txt", b"accented inside"),
];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    runtime: tokio::runtime::Runtime,
}

/// `<tmp>/secret.txt` outside, `<tmp>/root/` served, with links out of it.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        let root = dir.path().join("root");
        for (name, content) in FILES {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(dir.path().join("secret.txt"), root.join("escape.txt")).unwrap();
            symlink(dir.path(), root.join("escape-dir")).unwrap();
            symlink(root.join("hello.txt"), root.join("sub/inside.txt")).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        Fixture {
            _dir: dir,
            root,
            runtime,
        }
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    range: Option<String>,
    path: String,
}

fuzz_target!(|input: Input| {
    let fixture = fixture();
    let method = match input.method % 4 {
        0 | 1 => Method::GET,
        2 => Method::HEAD,
        _ => Method::POST,
    };
    let Ok(uri) = http::Uri::try_from(format!("/{}", input.path)) else {
        return;
    };
    let mut request = Request::builder().method(method.clone()).uri(uri);
    if let Some(range) = &input.range {
        request = request.header(http::header::RANGE, range.as_str());
    }
    let Ok(request) = request.body(Empty::<Bytes>::new()) else {
        return;
    };
    let service = RangeServeLayer::new().layer(ServeDir::new(&fixture.root));
    let (status, body) = fixture.runtime.block_on(async {
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    });
    assert!(
        !body.windows(SECRET.len()).any(|w| w == SECRET),
        "the secret leaked for {input:?}"
    );
    match (status, &method) {
        (StatusCode::OK, &Method::GET) => {
            assert!(
                FILES.iter().any(|(_, c)| *c == &body[..]),
                "{input:?}: {body:?}"
            );
        }
        (StatusCode::OK, &Method::HEAD) => assert!(body.is_empty()),
        // A range of a file inside the root (the secret check above covers it).
        (StatusCode::PARTIAL_CONTENT, &Method::GET | &Method::HEAD) => {}
        (
            StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE,
            &Method::GET | &Method::HEAD,
        )
        | (StatusCode::METHOD_NOT_ALLOWED, &Method::POST) => assert!(body.is_empty()),
        (other, method) => panic!("{other} for {method} {input:?}"),
    }
});
