//! The obvious axum code, with no client key of one's own, limits each client:
//! the default key finds the peer in axum's `ConnectInfo<SocketAddr>`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

const RATE: u64 = 256 * 1024;
const FILE: usize = 256 * 1024;

/// Downloads `/file.bin` over a connection from `source`, returning the bytes of
/// the whole response (head and body).
async fn download(server: SocketAddr, source: &str) -> usize {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"GET /file.bin HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    response.len()
}

/// Two clients (127.0.0.1 and 127.0.0.2), each with two parallel downloads of
/// 256 KiB, under a client rate of 256 KiB/s: each client's 512 KiB take about
/// two seconds (less the first 100 ms of budget and a chunk), both clients at
/// once. Unlimited (the key not found: the old default) they took milliseconds;
/// one bucket for both clients would take about four seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_client_key_limits_each_peer_under_axum_connect_info() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("file.bin"), vec![7u8; FILE]).unwrap();
    let app = Router::new()
        .fallback_service(ServeDir::new(root.path()))
        .layer(RangeServeLayer::new().client_rate(Bandwidth::new(RATE)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let start = Instant::now();
    let clients = ["127.0.0.1", "127.0.0.2"].map(|source| {
        tokio::spawn(async move {
            let (a, b) = tokio::join!(download(server, source), download(server, source));
            (a + b, start.elapsed())
        })
    });
    for client in clients {
        let (bytes, elapsed) = client.await.unwrap();
        assert!(bytes > 2 * FILE, "{bytes} bytes");
        assert!(elapsed > Duration::from_millis(1600), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3200), "{elapsed:?}");
    }
}
