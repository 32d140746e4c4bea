//! Stalled clients: opens many connections that each ask for a large file and never
//! read, then checks that a normal client is still served promptly.
//!
//! ```text
//! cargo run --release --example serve -- --root DIR      # DIR holds a large file
//! cargo run --release --example stalled_clients -- [--connections 2000]
//!     [--addr 127.0.0.1:3000] [--path /big.bin] [--hold SECS]
//! ```
//!
//! Each stalled connection makes the server hold what it has read for it but could
//! not send; the server's peak memory (`VmHWM` in `/proc/PID/status`) shows how
//! much that is. Both sides need file descriptors: `ulimit -n 20000` first.
//!
//! Only for servers on this machine: it sends to one address, a bounded number of
//! connections, and stops by itself.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Open stalled downloads, then time a normal one.
#[derive(Debug, Parser)]
struct Args {
    /// Stalled connections to open.
    #[arg(long, default_value_t = 2000)]
    connections: usize,

    /// Address of the server.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// Path of a large file on the server.
    #[arg(long, default_value = "/big.bin")]
    path: String,

    /// Receive buffer of each stalled socket, so that the kernel holds little of
    /// what the server sends and the rest waits in the server.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    recv_buffer: u32,

    /// Seconds to wait for the server to fill the stalled connections before the
    /// normal request, and again after it before closing them all.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    hold: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        eprintln!("error: --addr must be a loopback address");
        return ExitCode::FAILURE;
    }
    let request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", args.path, args.addr);

    let started = Instant::now();
    let mut stalled = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        match stall(args.addr, request.as_bytes(), args.recv_buffer).await {
            Ok(stream) => stalled.push(stream),
            Err(e) => {
                eprintln!("connection {i} failed: {e}");
                break;
            }
        }
    }
    println!(
        "{} stalled connections open in {:.1} s",
        stalled.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.hold)).await;

    match normal(args.addr, &args.path).await {
        Ok((status, bytes, first_byte, total)) => println!(
            "normal client: {status}, {bytes} bytes, first byte after {:.1} ms, all after {:.1} ms",
            first_byte.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        ),
        Err(e) => {
            eprintln!("normal client failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    drop(stalled);
    ExitCode::SUCCESS
}

/// A connection that sends `request` and never reads.
async fn stall(addr: SocketAddr, request: &[u8], recv_buffer: u32) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_recv_buffer_size(recv_buffer)?;
    let mut stream = socket.connect(addr).await?;
    stream.write_all(request).await?;
    Ok(stream)
}

/// The first MiB of the file on a new connection: status line, bytes received,
/// time to the first byte and to the last.
async fn normal(
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<(String, usize, Duration, Duration)> {
    const WANTED: usize = 1024 * 1024;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nRange: bytes=0-{}\r\nConnection: close\r\n\r\n",
        WANTED - 1
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(WANTED + 1024);
    let mut first_byte = None;
    let mut buf = vec![0; 64 * 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            first_byte.get_or_insert_with(|| started.elapsed());
            response.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 30 s"))??;
    let total = started.elapsed();
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&response[..head_end])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((
        status,
        response.len() - head_end,
        first_byte.unwrap_or(total),
        total,
    ))
}
