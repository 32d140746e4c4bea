//! Signed links over a real socket: what a valid link gets (200, 206, a `curl -C -`
//! resume, its claimed client rate), and what every refusal gets (403 or 410,
//! never a byte of the file); key rotation; a link minted by Python's standard
//! library from the documented format.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use support::{Fetched, content, get, send};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use tower_range_serve::signed::{Claims, KeySet, SignedLinksLayer, SigningKey};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

const LEN: usize = 48 * 1024;

fn key(id: &str, byte: u8) -> SigningKey {
    SigningKey::new(id, [byte; 32]).unwrap()
}

/// A root with `a.bin` and `b.bin` (different contents) and `hls/seg-1.ts`.
fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.bin"), content(LEN)).unwrap();
    let mut other = content(LEN);
    other.reverse();
    std::fs::write(root.path().join("b.bin"), other).unwrap();
    std::fs::create_dir(root.path().join("hls")).unwrap();
    std::fs::write(root.path().join("hls/seg-1.ts"), b"segment one").unwrap();
    root
}

/// Serves `root` behind `signed` on 127.0.0.1, with the peer address in each
/// request's extensions (as the demo server does).
async fn serve(root: &Path, signed: SignedLinksLayer) -> SocketAddr {
    let service = signed.layer(RangeServeLayer::new().layer(ServeDir::new(root)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = service.clone().map_request(move |mut request: Request<_>| {
                request.extensions_mut().insert(peer);
                request
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

fn in_an_hour() -> Claims {
    Claims::expiring_in(Duration::from_secs(3600))
}

/// A refusal: the status, a short text, no byte of any file.
fn assert_refused(fetched: &Fetched, status: StatusCode, what: &str) {
    assert_eq!(fetched.status, status, "{what}");
    let body = fetched.bytes();
    assert!(body.len() < 64, "{what}: {body:?}");
    assert!(
        body.starts_with(b"link") || body.starts_with(b"invalid"),
        "{what}: {body:?}"
    );
    assert_eq!(fetched.header("cache-control"), "no-store");
    assert!(
        !content(LEN)
            .windows(8)
            .any(|w| body.windows(8).any(|b| b == w)),
        "{what}: file bytes in {body:?}"
    );
}

#[tokio::test]
async fn a_valid_link_gets_the_file_and_its_ranges() {
    let root = root();
    let key = key("k1", 1);
    let addr = serve(root.path(), SignedLinksLayer::new(key.clone())).await;
    let link = key.sign("/a.bin", &in_an_hour()).unwrap().to_string();

    let full = send(addr, get(&link, &[])).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(&full.bytes()[..], &content(LEN)[..]);

    let part = send(addr, get(&link, &[("range", "bytes=100-199")])).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), format!("bytes 100-199/{LEN}"));
    assert_eq!(&part.bytes()[..], &content(LEN)[100..200]);

    // Unsigned parameters may be added; they change nothing signed.
    let extra = send(addr, get(&format!("{link}&download=1"), &[])).await;
    assert_eq!(extra.status, StatusCode::OK);
}

#[tokio::test]
async fn every_refusal_is_its_status_without_a_file_byte() {
    let root = root();
    let key = key("k1", 1);
    let addr = serve(root.path(), SignedLinksLayer::new(key.clone())).await;
    let link = key.sign("/a.bin", &in_an_hour()).unwrap();
    let query = link.query().to_owned();

    assert_refused(
        &send(addr, get("/a.bin", &[])).await,
        StatusCode::FORBIDDEN,
        "no link",
    );
    for path in ["/b.bin", "/a.bin.br", "/hls/../b.bin", "/%62.bin", "/A.bin"] {
        let fetched = send(addr, get(&format!("{path}?{query}"), &[])).await;
        assert_refused(&fetched, StatusCode::FORBIDDEN, path);
    }
    // Every one-character change of the query, at a sample of positions.
    for at in (0..query.len()).step_by(7) {
        let mut tampered = query.clone().into_bytes();
        tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
        let tampered = String::from_utf8(tampered).unwrap();
        let fetched = send(addr, get(&format!("/a.bin?{tampered}"), &[])).await;
        assert_refused(&fetched, StatusCode::FORBIDDEN, &tampered);
    }
    // A client claim changed, the signature kept.
    let claimed = key
        .sign("/a.bin", &in_an_hour().rate(Bandwidth::kib(1)))
        .unwrap();
    let lifted = claimed.to_string().replace("rate=1024", "rate=9999999");
    assert_refused(
        &send(addr, get(&lifted, &[])).await,
        StatusCode::FORBIDDEN,
        "lifted rate",
    );

    // Valid signatures whose claims do not hold.
    let expired = key
        .sign(
            "/a.bin",
            &Claims::expiring_at(SystemTime::now() - Duration::from_secs(60)),
        )
        .unwrap();
    assert_refused(
        &send(addr, get(&expired.to_string(), &[("range", "bytes=0-9")])).await,
        StatusCode::GONE,
        "expired",
    );
    let early = key
        .sign(
            "/a.bin",
            &in_an_hour().not_before(SystemTime::now() + Duration::from_secs(600)),
        )
        .unwrap();
    assert_refused(
        &send(addr, get(&early.to_string(), &[])).await,
        StatusCode::FORBIDDEN,
        "not yet",
    );
    let elsewhere = key
        .sign("/a.bin", &in_an_hour().ip("127.0.0.2".parse().unwrap()))
        .unwrap();
    assert_refused(
        &send(addr, get(&elsewhere.to_string(), &[])).await,
        StatusCode::FORBIDDEN,
        "other ip",
    );
    let here = key
        .sign("/a.bin", &in_an_hour().ip("127.0.0.0/8".parse().unwrap()))
        .unwrap();
    assert_eq!(
        send(addr, get(&here.to_string(), &[])).await.status,
        StatusCode::OK
    );
    // HEAD is checked like GET.
    let head = support::request("HEAD", &format!("/b.bin?{query}"), &[]);
    assert_eq!(send(addr, head).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn folder_links_cover_the_paths_under_their_folder() {
    let root = root();
    let key = key("k1", 1);
    let addr = serve(root.path(), SignedLinksLayer::new(key.clone())).await;
    let folder = key.sign_folder("/hls", &in_an_hour()).unwrap();
    let segment = send(addr, get(&format!("/hls/seg-1.ts?{}", folder.query()), &[])).await;
    assert_eq!(segment.status, StatusCode::OK);
    assert_eq!(&segment.bytes()[..], b"segment one");
    let outside = send(addr, get(&format!("/a.bin?{}", folder.query()), &[])).await;
    assert_refused(&outside, StatusCode::FORBIDDEN, "outside the folder");
}

#[tokio::test]
async fn both_keys_verify_during_a_rotation() {
    let root = root();
    let (old, new) = (key("2026-11", 1), key("2026-12", 2));
    let layer = SignedLinksLayer::new(KeySet::new(new.clone()).verify_also(old.clone()));
    let addr = serve(root.path(), layer).await;
    for signer in [&old, &new] {
        let link = signer.sign("/a.bin", &in_an_hour()).unwrap().to_string();
        assert_eq!(
            send(addr, get(&link, &[])).await.status,
            StatusCode::OK,
            "{}",
            signer.id()
        );
    }
    let retired = key("2026-10", 3)
        .sign("/a.bin", &in_an_hour())
        .unwrap()
        .to_string();
    assert_refused(
        &send(addr, get(&retired, &[])).await,
        StatusCode::FORBIDDEN,
        "retired key",
    );
}

#[tokio::test]
async fn curl_resumes_with_the_same_link() {
    let root = root();
    let key = key("k1", 1);
    let addr = serve(root.path(), SignedLinksLayer::new(key.clone())).await;
    let link = key.sign("/a.bin", &in_an_hour()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("a.bin");
    std::fs::write(&file, &content(LEN)[..LEN / 3]).unwrap();
    let url = format!("http://{addr}{link}");
    let status = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--fail", "-C", "-", "-o"])
            .arg(&file)
            .arg(&url)
            .status()
    })
    .await
    .unwrap()
    .expect("curl runs");
    assert!(status.success(), "curl: {status}");
    assert_eq!(
        std::fs::read(out.path().join("a.bin")).unwrap(),
        content(LEN)
    );

    // The same resume from another address (curl --interface) is refused.
    let pinned = key
        .sign("/a.bin", &in_an_hour().ip("127.0.0.1".parse().unwrap()))
        .unwrap();
    let url = format!("http://{addr}{pinned}");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--interface",
                "127.0.0.2",
            ])
            .arg(&url)
            .output()
    })
    .await
    .unwrap()
    .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "403");
}

/// A link valid for about a second, claiming a client rate: two downloads
/// started at once share the rate (measured), both finish although the link
/// expires meanwhile, and a resume afterwards gets 410.
#[tokio::test]
async fn a_claimed_client_rate_holds_and_a_started_download_outlives_its_link() {
    let root = root();
    let key = key("k1", 1);
    let layer = SignedLinksLayer::new(key.clone()).clock_skew(Duration::ZERO);
    let addr = serve(root.path(), layer).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims::expiring_at(UNIX_EPOCH + Duration::from_secs(now + 1))
        .client("user-1")
        .client_rate(Bandwidth::kib(32));
    let folder = key.sign_folder("/", &claims).unwrap();
    let started = Instant::now();
    let (a, b) = tokio::join!(
        send(addr, get(&format!("/a.bin?{}", folder.query()), &[])),
        send(addr, get(&format!("/b.bin?{}", folder.query()), &[])),
    );
    let elapsed = started.elapsed();
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a.bytes().len() + b.bytes().len(), 2 * LEN);
    // 96 KiB at 32 KiB/s: 3 s, less the 100 ms a shared limit may burst.
    assert!(elapsed >= Duration::from_millis(2800), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    // The link expired while they ran (at most 2 s after `now`): no resume.
    let resume = send(
        addr,
        get(
            &format!("/a.bin?{}", folder.query()),
            &[("range", "bytes=100-")],
        ),
    )
    .await;
    assert_refused(&resume, StatusCode::GONE, "resume after expiry");
}

/// The Python snippet of `docs/signed-links.md` (its first `python` block),
/// and a line that mints a link with it.
fn python_mint() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/signed-links.md"))
        .unwrap();
    let block = doc.split("```python\n").nth(1).expect("a python block");
    let snippet = &block[..block.find("```").expect("the end of the block")];
    format!(
        "{snippet}\nimport sys\n\
         print(sign(bytes.fromhex(sys.argv[1]), 'py-1', sys.argv[2], 3600, sub='user 42', \
         client_rate='1048576'))\n"
    )
}

#[tokio::test]
async fn a_link_minted_by_pythons_standard_library_is_accepted() {
    let python = Command::new("python3").arg("--version").output();
    if python.is_err() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: no python3");
        return;
    }
    let root = root();
    std::fs::write(root.path().join("a b é.txt"), b"spaced and accented").unwrap();
    let secret = [0x5a_u8; 32];
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let output = Command::new("python3")
        .args(["-c", &python_mint(), &hex, "/a b é.txt"])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(link.starts_with("/a%20b%20%C3%A9.txt?exp="), "{link}");

    let key = SigningKey::new("py-1", secret).unwrap();
    let addr = serve(root.path(), SignedLinksLayer::new(key)).await;
    let fetched = send(addr, get(&link, &[])).await;
    assert_eq!(fetched.status, StatusCode::OK, "{link}");
    assert_eq!(&fetched.bytes()[..], b"spaced and accented");
    let other = link.replacen("/a%20b%20%C3%A9.txt", "/a.bin", 1);
    assert_refused(
        &send(addr, get(&other, &[])).await,
        StatusCode::FORBIDDEN,
        "python link, other path",
    );
}

/// Under axum (`Router::layer`, `axum::serve` with `ConnectInfo`), the layer
/// fits, and the default client address is found for `ip` claims.
#[tokio::test]
async fn it_fits_axum_and_finds_the_peer_in_connect_info() {
    let root = root();
    let key = key("k1", 1);
    let app = axum::Router::new()
        .fallback_service(ServeDir::new(root.path()))
        .layer(RangeServeLayer::new())
        .layer(SignedLinksLayer::new(key.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let here = key
        .sign("/a.bin", &in_an_hour().ip("127.0.0.1".parse().unwrap()))
        .unwrap();
    let fetched = send(addr, get(&here.to_string(), &[("range", "bytes=0-9")])).await;
    assert_eq!(fetched.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&fetched.bytes()[..], &content(LEN)[..10]);
    let elsewhere = key
        .sign("/a.bin", &in_an_hour().ip("127.0.0.2".parse().unwrap()))
        .unwrap();
    assert_refused(
        &send(addr, get(&elsewhere.to_string(), &[])).await,
        StatusCode::FORBIDDEN,
        "other ip",
    );
}
