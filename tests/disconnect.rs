//! A thousand downloads cut off mid-stream leave nothing behind: no open file,
//! no task, no client state. Alone in its test binary, so that no other test
//! opens files or spawns tasks meanwhile.

use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, ServiceExt};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_aborted_downloads_leave_no_descriptor_task_or_client_state() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), vec![7u8; 16 << 20]).unwrap();
    // Clients are counted and share limits (their state must go with their last
    // stream, and streams dropped while waiting for their turn must not stall
    // the others).
    let layer = RangeServeLayer::new()
        .max_streams_per_client(10_000)
        .client_rate(Bandwidth::mib(256))
        .total_rate(Bandwidth::mib(1024));
    let control = layer.bandwidth_control();
    let shutdown = layer.shutdown_handle();
    let service = layer.layer(ServeDir::new(root.path()));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = service
                .clone()
                .map_request(move |mut request: http::Request<_>| {
                    request.extensions_mut().insert(peer);
                    request
                });
            let closed = closed.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
                let _ = closed.send(());
            });
        }
    });

    // Settle the runtime's own descriptors and tasks with one full download.
    download_part(addr, usize::MAX).await;
    closed_rx.recv().await.unwrap();
    wait_for(|| shutdown.active() == 0 && control.active_clients() == 0).await;
    let (fds, tasks) = (open_fds(), alive_tasks());

    for _ in 0..20 {
        let clients: Vec<_> = (0..50)
            .map(|i| tokio::spawn(download_part(addr, 64 * 1024 * (1 + i % 8))))
            .collect();
        for client in clients {
            client.await.unwrap();
        }
    }
    for _ in 0..1000 {
        closed_rx.recv().await.unwrap();
    }
    // Reads already running on the blocking pool finish on their own and close
    // their file; wait for those, boundedly.
    wait_for(|| shutdown.active() == 0 && open_fds() <= fds && alive_tasks() <= tasks).await;
    assert_eq!(shutdown.active(), 0, "bodies still alive");
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    // At most: the client's turn keeper, if it had not ended yet when the
    // baseline was taken, has ended since.
    assert!(
        alive_tasks() <= tasks,
        "tasks leaked: {} > {tasks}",
        alive_tasks()
    );
    assert_eq!(control.active_clients(), 0, "client state leaked");
}

/// Downloads the big file, reading `limit` bytes at most, then hangs up.
async fn download_part(addr: SocketAddr, limit: usize) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < limit {
        match stream.read(&mut buf).await.unwrap() {
            0 => break,
            n => read += n,
        }
    }
}

/// Waits until `done` holds, giving the blocking pool time to finish its reads;
/// gives up after a bounded number of rounds and lets the asserts report.
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        tokio::task::yield_now().await;
    }
}
