//! The demo download server: a directory served through `ServeDir` and
//! `RangeServeLayer` on hyper (HTTP/1.1 and HTTP/2 on one port).
//!
//! ```text
//! cargo run --release --example serve -- [--root DIR] [--addr HOST:PORT]
//! ```
//!
//! Without `--root` it creates a demo folder in the system's temporary directory
//! (a few small files and a 64 MiB one) and serves that. `--s3 s3://BUCKET[/PREFIX]`
//! serves the objects of a bucket instead, through `ServeObjects`, with the
//! endpoint and credentials of the standard environment variables
//! (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint); every other flag works the
//! same.
//!
//! Bandwidth: `--rate` (each download), `--rate-after` (bytes at full speed first),
//! `--client-rate` (shared by all downloads of one peer IP), `--total-rate` (all
//! downloads together), `--max-streams-per-client` (beyond it, 429). Rates are
//! bytes per second, or with units: `256KiB`, `1MiB`, `10MB`. With `--redis URL`
//! the client and total rates are shared by every server given the same Redis
//! (`--redis-prefix`, `--redis-fallback share|wait`, `--replicas N`).
//! `--quota BYTES/DURATION` (e.g. `1GiB/1d`, `4MiB/60s`) gives each client that
//! many bytes per period (429 after, or `--quota-exhausted RATE` to go on
//! slowly); shared the same way with `--redis`.
//!
//! Directories: `/` and every folder without an `index.html` show a listing
//! (`--no-listing` turns listings off). Files with precompressed sidecars
//! (`NAME.br`, `NAME.zst`, `NAME.gz`) are sent in the coding the client accepts
//! (`--precompressed br,zstd,gzip`, the default; `--precompressed none` turns
//! them off); the demo folder's `notes.txt` has `.gz` and `.br` sidecars.
//!
//! Files: `--open-file-cache ENTRIES[/SECONDS]` (`4096/2` by default, `off`)
//! keeps what requests resolved, like nginx's `open_file_cache`.
//!
//! Digests: `--digest sha-256` (the default), `--digest sha-512` or
//! `--digest none`. Files get `Repr-Digest` (RFC 9530) and `Digest` (RFC 3230,
//! which aria2 verifies) when a request asks, from a `NAME.sha256` /
//! `NAME.sha512` checksum file beside the file, or hashed in the background
//! after the first request.
//!
//! Signed links: `--signing-key [ID=]FILE` (repeatable; the first signs, all
//! verify) makes every path need a valid signed link (403 without one, 410
//! once expired) and turns directory listings off; `serve sign --signing-key
//! FILE [--expires-in 2h] [--client ID] [--client-rate RATE] [--rate RATE]
//! [--ip ADDR[/PREFIX]] [--folder] PATH` prints `PATH?QUERY` to append to the
//! server's URL. See `signing.rs` and `docs/signed-links.md`.
//!
//! Lifecycle: running downloads are shown on the terminal (as live progress
//! bars in a terminal, as plain lines otherwise); Ctrl-C or SIGTERM
//! refuses new downloads (503), lets running ones go on for `--grace` seconds,
//! cuts the rest and exits. `--idle-timeout` disconnects clients that accept no
//! byte for that long.
//!
//! Operators: `--metrics HOST:PORT` serves `/metrics` (Prometheus text format:
//! answers, bytes, running downloads, durations to the last byte, outcomes,
//! throttle waits, refusals). `--admin HOST:PORT` serves a live page of the
//! running downloads, with their progress and rate, a throughput graph, a
//! cancel button per download and the total and client rates to change, and
//! its JSON API (see `admin.rs`); on loopback, or anywhere with
//! `--admin-token TOKEN`.
//!
//! HTTPS: `--tls-cert FILE --tls-key FILE` (PEM) or `--tls-self-signed` (a
//! certificate for localhost and 127.0.0.1 made at start); see `tls.rs`.
//!
//! Runtimes: one single-threaded runtime per core (`--workers N`: N), each on
//! its own `SO_REUSEPORT` listener (Unix; elsewhere the default is 0);
//! `--workers 0`: one runtime with a thread per core and one listener. See
//! `accept.rs`.

mod accept;
mod admin;
mod balance;
mod demo;
mod downloads;
mod metrics;
mod progress;
mod quota;
mod signal;
mod signing;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::Either as BodyEither;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tower::util::Either;
use tower::{Layer, ServiceExt};
use tower_range_serve::digest::{DigestAlgorithm, Digests, UnknownAlgorithm};
use tower_range_serve::dir::{Encoding, OpenFileCache};
use tower_range_serve::objects::ServeObjects;
use tower_range_serve::signed::{KeySet, SignedLinksLayer};
use tower_range_serve::throttle::{Fallback, RedisLimits};
use tower_range_serve::{Bandwidth, RangeServeLayer, ServeDir};

/// The requests hyper hands the service.
type Incoming = http::Request<hyper::body::Incoming>;

/// What stays unencoded in a URL path segment: RFC 3986 `unreserved`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Serve a directory as resumable, range-aware downloads.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Key file of signed links: `[ID=]FILE`, the secret as hex text (at least
    /// 64 hex digits, e.g. from `openssl rand -hex 32`); the id defaults to
    /// the file name without extension. Every path then needs a valid signed
    /// link, and directory listings are off. Repeat for key rotation: the first
    /// signs (`serve sign`), all verify.
    #[arg(long = "signing-key", value_name = "[ID=]FILE")]
    signing_keys: Vec<String>,

    /// Directory to serve. Without it, a demo folder is created and served.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Bucket (and key prefix) to serve instead of a directory, e.g.
    /// s3://downloads/public. Endpoint and credentials come from AWS_ENDPOINT,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (AWS_ALLOW_HTTP=true
    /// for a plain-HTTP endpoint).
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", conflicts_with = "root")]
    s3: Option<String>,

    /// Bytes of each download read ahead of its client while reads wait (disk
    /// misses, object storage).
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = bytes)]
    read_ahead: u64,

    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// Bytes read from disk at once, and the largest body frame.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = bytes)]
    chunk_size: u64,

    /// Most ranges served in one multipart response; more are answered with 200.
    #[arg(long, value_name = "N", default_value_t = tower_range_serve::DEFAULT_MAX_RANGES)]
    max_ranges: usize,

    /// Rate of each download (0 = unlimited), e.g. 256KiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    rate: Bandwidth,

    /// Bytes of each download sent at full speed before --rate applies, e.g. 4MiB.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = bytes)]
    rate_after: u64,

    /// Smallest chunk a --rate download sends at once (or a second of its rate,
    /// if less); 0: a tenth of a second of the rate at any rate. Smaller is
    /// smoother, larger costs less CPU.
    #[arg(long, value_name = "BYTES", default_value = "16KiB", value_parser = bytes)]
    min_throttled_chunk: u64,

    /// Rate shared by all downloads of one client (peer IP), e.g. 1MiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    client_rate: Bandwidth,

    /// Rate of all downloads together, e.g. 100MiB.
    #[arg(long, value_name = "RATE", default_value = "0")]
    total_rate: Bandwidth,

    /// Most concurrent downloads of one client; more get 429 Too Many Requests.
    #[arg(long, value_name = "N")]
    max_streams_per_client: Option<usize>,

    /// Seconds running downloads may go on after Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    grace: f64,

    /// Seconds a client may accept no byte before it is disconnected (0 = never).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    idle_timeout: f64,

    /// Most bytes hyper buffers per HTTP/1 connection (at least 8KiB). With the
    /// chunk size, bounds the server memory a client that stops reading holds:
    /// about this plus a chunk or two.
    #[arg(long, value_name = "BYTES", default_value = "8KiB", value_parser = bytes)]
    max_buf_size: u64,

    /// Most bytes hyper queues per HTTP/2 stream before it stops asking the
    /// body for more (hyper's default: about 400 KiB). A throttled stream over
    /// HTTP/2 holds its queued chunks in memory until its connection writes them.
    #[arg(long, value_name = "BYTES", value_parser = bytes)]
    h2_max_send_buf_size: Option<u64>,

    #[command(flatten)]
    tls: tls::TlsArgs,

    /// Serve with N single-threaded runtimes, one thread each, accepting on N
    /// SO_REUSEPORT listeners of --addr (as nginx's workers); 0: one runtime
    /// with a thread per core, one listener. [default: one per core on Unix,
    /// 0 elsewhere]
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// With two workers or more, serve each new connection where the kernel's
    /// listener choice put it, instead of by the worker serving the fewest.
    #[arg(long)]
    no_balance: bool,

    /// Kernel send buffer of each connection (SO_SNDBUF; 0 = the system's
    /// autotuning). Bounds the kernel memory a stalled client holds: on loopback
    /// an autotuned buffer grows to megabytes, and a few thousand stalled clients
    /// exhaust the kernel's TCP memory for everyone.
    #[arg(long, value_name = "BYTES", default_value = "512KiB", value_parser = bytes)]
    send_buffer: u64,

    /// Most bytes of each connection waiting unsent in the kernel
    /// (TCP_NOTSENT_LOWAT, Linux; 0 = the system's setting). Bytes in flight
    /// are not counted, so unlike a small --send-buffer it never slows a long,
    /// fast path. Measured on loopback: 64 connections move about 1.25x the
    /// bytes per second with a shorter p99.
    #[arg(long, value_name = "BYTES", default_value = "64KiB", value_parser = bytes)]
    max_unsent: u64,

    #[command(flatten)]
    quota: quota::QuotaArgs,

    /// Redis that makes --client-rate, --total-rate and --quota cluster-wide: every
    /// server given the same URL draws from one budget per client and one in
    /// total, e.g. redis://127.0.0.1:6379.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,

    /// Prefix of the Redis keys; servers with the same prefix share budgets.
    #[arg(long, value_name = "PREFIX", default_value = "tower-range-serve")]
    redis_prefix: String,

    /// While Redis is unreachable: `share` goes on at 1/--replicas of each
    /// shared rate, or 1/(the replicas last seen in Redis) without --replicas
    /// (fail open); `wait` sends nothing until Redis is back (fail closed).
    #[arg(long, value_name = "MODE", default_value = "share", value_parser = ["share", "wait"])]
    redis_fallback: String,

    /// Seconds of a shared rate one server leases from Redis at a time: longer
    /// means fewer Redis requests (about one per lease per busy client and
    /// server) and coarser sharing.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1)]
    redis_lease: f64,

    /// How many servers share the Redis budgets, for --redis-fallback share:
    /// while Redis is unreachable each goes on at 1/N of each shared rate.
    /// Without it the count is learned from Redis (the servers' heartbeats).
    #[arg(long, value_name = "N")]
    replicas: Option<u32>,

    /// Digest algorithm hashed in the background for `Repr-Digest` and `Digest`:
    /// sha-256, sha-512, or none (no digest fields at all). Checksum files
    /// beside the files (NAME.sha256, NAME.sha512) are used either way.
    #[arg(long, value_name = "ALGORITHM", default_value = "sha-256", value_parser = digest)]
    digest: DigestChoice,

    /// Seconds between progress reports of running downloads (0 = none). In a
    /// terminal, running downloads are live progress bars instead.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    progress: f64,

    /// Do not list directories (a directory without index.html is then 404).
    #[arg(long)]
    no_listing: bool,

    /// Precompressed sidecars to send when the client accepts them, in order
    /// of preference: a list of br, zstd, gzip, deflate, or `none`.
    #[arg(long, value_name = "LIST", default_value = "br,zstd,gzip", value_parser = encodings)]
    precompressed: Encodings,

    /// Serve download metrics at http://HOST:PORT/metrics (Prometheus text
    /// format), e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<SocketAddr>,

    /// Serve the admin page (running downloads, throughput, cancel, rates) and
    /// its JSON API at http://HOST:PORT/, e.g. 127.0.0.1:3001. Loopback only,
    /// unless --admin-token is set.
    #[arg(long, value_name = "HOST:PORT")]
    admin: Option<SocketAddr>,

    /// Bearer token every admin API request must carry (`Authorization:
    /// Bearer TOKEN`); required for a non-loopback --admin. Open the page as
    /// http://HOST:PORT/#token=TOKEN.
    #[arg(long, value_name = "TOKEN", requires = "admin")]
    admin_token: Option<String>,

    /// Files, directories and missing paths kept after a request resolved them
    /// (like nginx's open_file_cache): at most ENTRIES (and open descriptors),
    /// each used for SECONDS before its path is resolved again; `off` (or 0)
    /// resolves and opens every request's file. Files changed in place are
    /// seen at once; replaced, deleted or new files within SECONDS. With --s3,
    /// objects' heads (no HEAD request per download; an overwritten object
    /// fails one download, then is opened again).
    #[arg(long, value_name = "ENTRIES[/SECONDS]|off", default_value = "4096/2", value_parser = open_file_cache)]
    open_file_cache: OpenFileCache,
}

/// `ENTRIES`, `ENTRIES/SECONDS` or `off`.
fn open_file_cache(value: &str) -> Result<OpenFileCache, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(OpenFileCache::off());
    }
    let (entries, seconds) = value.split_once('/').unwrap_or((value, ""));
    let entries: usize = entries
        .parse()
        .map_err(|e| format!("{entries:?}: {e} (expected ENTRIES[/SECONDS] or off)"))?;
    let mut cache = OpenFileCache::new().entries(entries);
    if !seconds.is_empty() {
        let seconds: f64 = seconds.parse().map_err(|e| format!("{seconds:?}: {e}"))?;
        let validity = Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())?;
        cache = cache.validity(validity);
    }
    Ok(cache)
}

/// Subcommands; without one, the server runs.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print a signed link for PATH (`PATH?QUERY`), to append to the server's URL.
    Sign(signing::Sign),
}

/// The codings of `--precompressed`.
#[derive(Debug, Clone)]
struct Encodings(Vec<Encoding>);

/// `br,zstd,gzip` or `none`.
fn encodings(value: &str) -> Result<Encodings, String> {
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(Encodings(Vec::new()));
    }
    value
        .split(',')
        .map(|name| {
            name.parse::<Encoding>()
                .map_err(|e| format!("{name:?}: {e}"))
        })
        .collect::<Result<_, _>>()
        .map(Encodings)
}

/// A byte count, with the units `Bandwidth` accepts (`64KiB`, `1MB`, plain bytes).
fn bytes(value: &str) -> Result<u64, String> {
    value
        .parse::<Bandwidth>()
        .map(Bandwidth::bytes_per_second)
        .map_err(|e| e.to_string())
}

/// The value of `--digest`: an algorithm, or none.
#[derive(Debug, Clone, Copy)]
struct DigestChoice(Option<DigestAlgorithm>);

/// `none`, or a digest algorithm (`sha-256`, `sha-512`).
fn digest(value: &str) -> Result<DigestChoice, String> {
    match value {
        "none" => Ok(DigestChoice(None)),
        _ => value
            .parse()
            .map(|algorithm| DigestChoice(Some(algorithm)))
            .map_err(|e: UnknownAlgorithm| format!("{e}, or none")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Sign(sign)) = &args.command {
        return match signing::sign(sign) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let keys = match signing::key_set(&args.signing_keys) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let source = match &args.s3 {
        Some(url) => match bucket(url).await {
            Ok(bucket) => Source::Bucket(bucket),
            Err(e) => {
                eprintln!("error: --s3 {url}: {}", e.replace('\n', " "));
                return ExitCode::FAILURE;
            }
        },
        None => match &args.root {
            Some(root) if root.is_dir() => Source::Dir(root.clone()),
            Some(root) => {
                eprintln!("error: --root {} is not a directory", root.display());
                return ExitCode::FAILURE;
            }
            None => match demo::folder() {
                Ok(root) => Source::Dir(root),
                Err(e) => {
                    eprintln!("error: cannot create the demo folder: {e}");
                    return ExitCode::FAILURE;
                }
            },
        },
    };
    let runtimes = args.workers.unwrap_or_else(accept::default_workers);
    let (mut sockets, addr) = match accept::bind(args.addr, runtimes) {
        Ok(sockets) => {
            let addr = sockets[0]
                .local_addr()
                .expect("a bound socket has an address");
            (sockets, addr)
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };

    let tls = match tls::Tls::from_args(&args.tls) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    if let Some(addr) = args.admin {
        if let Err(e) = admin::check(addr, args.admin_token.as_deref()) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The recorder first: the layer's Redis limits report their state as they
    // are made.
    let prometheus = match args.metrics.map(|_| metrics::install()).transpose() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: --metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let downloads = args.admin.map(|_| downloads::Downloads::default());
    let progress = progress::Progress::new();
    let layer = match layer(&args, progress.clone(), downloads.clone()) {
        Ok(layer) => layer,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = layer.shutdown_handle();
    // One response body type for both: the layer reads the file-backed
    // responses' marker, whatever their body.
    let service = layer.layer(match &source {
        Source::Dir(root) => Either::Left(ServiceExt::<Incoming>::map_response(
            ServeDir::new(root)
                // Listings would link unsigned paths: off with signed links.
                .listing(!args.no_listing && keys.is_none())
                .precompressed(args.precompressed.0.iter().copied())
                .open_file_cache(args.open_file_cache),
            |response| response.map(BodyEither::Left),
        )),
        Source::Bucket(bucket) => Either::Right(ServiceExt::<Incoming>::map_response(
            ServeObjects::new(bucket.store.clone())
                .prefix(bucket.prefix.clone())
                .open_cache(args.open_file_cache),
            |response| response.map(BodyEither::Right),
        )),
    });
    if let (Some(addr), Some(handle)) = (args.metrics, prometheus) {
        match metrics::serve(addr, handle).await {
            Ok(bound) => println!("metrics: http://{bound}/metrics"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let (Some(addr), Some(downloads)) = (args.admin, downloads) {
        let token = args.admin_token.clone();
        let control = layer.bandwidth_control();
        match admin::serve(addr, admin::Admin::new(downloads, control, token)).await {
            Ok(bound) => println!("admin: http://{bound}/"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Signed links are checked before anything else; one body type for both.
    let service = match &keys {
        Some(keys) => Either::Left(ServiceExt::<Incoming>::map_response(
            SignedLinksLayer::new(keys.clone()).layer(service),
            |response| response.map(BodyEither::Left),
        )),
        None => Either::Right(ServiceExt::<Incoming>::map_response(service, |response| {
            response.map(BodyEither::Right)
        })),
    };
    print_banner(&source, addr, &args, keys.as_ref(), tls.as_ref());
    if args.progress > 0.0 && !progress.is_live() {
        tokio::spawn(progress.report(Duration::from_secs_f64(args.progress)));
    }

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(usize::try_from(args.max_buf_size.max(8192)).unwrap_or(usize::MAX));
    if let Some(max) = args.h2_max_send_buf_size {
        builder
            .http2()
            .max_send_buf_size(usize::try_from(max.clamp(1, u64::from(u32::MAX))).unwrap_or(1));
    }
    let serve = accept::Serve {
        service,
        builder,
        tls,
        send_buffer: args.send_buffer,
        max_unsent: u32::try_from(args.max_unsent).unwrap_or(u32::MAX),
        idle_timeout: Duration::from_secs_f64(args.idle_timeout.max(0.0)),
        shutdown: shutdown.clone(),
    };
    let stop = signal::stop();
    // --workers: single-threaded runtimes on their own threads; else this one.
    let (stop_workers, workers) = tokio::sync::watch::channel(None);
    let (mut connections, workers) = if runtimes > 0 {
        let threads = match serve.workers(sockets, !args.no_balance, &workers) {
            Ok(threads) => threads,
            Err(e) => {
                eprintln!("error: cannot start the workers: {e}");
                return ExitCode::FAILURE;
            }
        };
        stop.await;
        (tokio::task::JoinSet::new(), threads)
    } else {
        let listener = match sockets.remove(0).listen(accept::BACKLOG) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        (serve.accept_loop(listener, None, stop).await, Vec::new())
    };

    let grace = Duration::from_secs_f64(args.grace.max(0.0));
    println!(
        "shutting down: {} downloads running, {:.1} s of grace",
        shutdown.active(),
        grace.as_secs_f64()
    );
    shutdown.begin(grace);
    let _ = stop_workers.send(Some(grace));
    // Downloads end by themselves within the grace period, and `Connections`
    // closes what is left then (a client that stopped reading, say).
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), shutdown.drained()).await;
    connections.shutdown().await;
    for worker in workers {
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    }
    println!(
        "stopped: cut {} downloads at the end of the grace period",
        shutdown.cut()
    );
    ExitCode::SUCCESS
}

/// The layer the command line asks for.
fn layer(
    args: &Args,
    progress: progress::Progress,
    downloads: Option<downloads::Downloads>,
) -> Result<RangeServeLayer, String> {
    let mut layer = RangeServeLayer::new()
        .chunk_size(usize::try_from(args.chunk_size).unwrap_or(usize::MAX))
        .read_ahead(usize::try_from(args.read_ahead).unwrap_or(usize::MAX))
        .max_ranges(args.max_ranges);
    let progress = (args.progress > 0.0).then_some(progress);
    if progress.as_ref().is_some_and(progress::Progress::is_live) {
        // Bars move smoothly, whatever --progress says.
        layer = layer.progress_interval(Duration::from_millis(200));
    } else if downloads.is_some() {
        // The admin page's rates and bars.
        layer = layer.progress_interval(Duration::from_millis(250));
    }
    layer = match (progress, downloads) {
        (Some(progress), Some(downloads)) => layer.observer((progress, downloads)),
        (Some(progress), None) => layer.observer(progress),
        (None, Some(downloads)) => layer.observer(downloads),
        (None, None) => layer,
    };
    if args.metrics.is_some() {
        layer = layer.metrics(tower_range_serve::lifecycle::Metrics::new());
    }
    layer = layer.digests(match args.digest.0 {
        Some(algorithm) => Digests::new().algorithm(algorithm),
        None => Digests::off(),
    });
    // An unlimited setting turns nothing on: an unlimited server pays nothing.
    layer = layer
        .rate(args.rate)
        .rate_after(args.rate_after)
        .min_throttled_chunk(args.min_throttled_chunk)
        .client_rate(args.client_rate)
        .total_rate(args.total_rate);
    if let Some(max) = args.max_streams_per_client {
        layer = layer.max_streams_per_client(max);
    }
    layer = args.quota.apply(layer);
    if let Some(url) = &args.redis {
        let fallback = match args.redis_fallback.as_str() {
            "wait" => Fallback::Wait,
            _ => args
                .replicas
                .map_or(Fallback::LearnedShare, Fallback::local_share),
        };
        let limits = RedisLimits::new(url.as_str())
            .map_err(|e| format!("--redis {url}: {e}"))?
            .prefix(args.redis_prefix.as_str())
            .lease(
                Duration::try_from_secs_f64(args.redis_lease)
                    .map_err(|e| format!("--redis-lease: {e}"))?,
            )
            .fallback(fallback);
        layer = layer.redis(limits);
    }
    Ok(layer)
}

/// What is served: a directory, or objects under a bucket's prefix.
enum Source {
    Dir(PathBuf),
    Bucket(Bucket),
}

struct Bucket {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    /// The objects directly under the prefix (up to the store's first page), and
    /// their lengths.
    objects: Vec<(String, u64)>,
}

/// Connects to the bucket of `s3://BUCKET[/PREFIX]` and lists its prefix, so
/// that a bad endpoint or bad credentials show at start-up.
async fn bucket(url: &str) -> Result<Bucket, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or("expected s3://BUCKET[/PREFIX]")?;
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err("expected s3://BUCKET[/PREFIX]".into());
    }
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(name)
        .with_retry(object_store::RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..Default::default()
        })
        .build()
        .map_err(|e| e.to_string())?;
    let prefix = Key::from(prefix);
    let listing = tokio::time::timeout(
        Duration::from_secs(15),
        store.list_with_delimiter(Some(&prefix)),
    )
    .await
    .map_err(|_| "the store did not answer within 15 s".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut objects: Vec<_> = listing
        .objects
        .iter()
        .filter_map(|meta| Some((meta.location.filename()?.to_owned(), meta.size)))
        .collect();
    objects.sort();
    Ok(Bucket {
        url: url.to_owned(),
        store: Arc::new(store),
        prefix,
        objects,
    })
}

fn print_banner(
    source: &Source,
    addr: SocketAddr,
    args: &Args,
    keys: Option<&KeySet>,
    tls: Option<&tls::Tls>,
) {
    let base = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let served = match source {
        Source::Dir(root) => root.display().to_string(),
        Source::Bucket(bucket) => bucket.url.clone(),
    };
    println!("tower-range-serve demo: serving {served} on {base}");
    if let Some(keys) = keys {
        println!(
            "signed links: every path needs one (key {}; the links below last an hour); \
             mint with `serve sign --signing-key FILE PATH`; listings are off",
            keys.signing_key().id()
        );
    } else if matches!(source, Source::Dir(_)) {
        if args.no_listing {
            println!("open {base}/FILE in a browser (directory listings are off)");
        } else {
            println!("open {base}/ in a browser: it lists the folder and links every file");
        }
    }
    let codings: Vec<_> = args.precompressed.0.iter().map(|e| e.name()).collect();
    println!(
        "precompressed sidecars: {}",
        if codings.is_empty() {
            "off".to_owned()
        } else {
            codings.join(", ")
        }
    );
    {
        let cache = args.open_file_cache;
        match cache.get_entries() {
            0 => println!("open-file cache: off"),
            entries => println!(
                "open-file cache: {entries} entries, valid {} s",
                cache.get_validity().as_secs_f64()
            ),
        }
    }
    println!(
        "bandwidth: each download {}{}, each client {}, total {}{}{}",
        args.rate,
        match args.rate_after {
            0 => String::new(),
            after => format!(" after {after} bytes"),
        },
        args.client_rate,
        args.total_rate,
        match &args.redis {
            Some(url) => format!(" (shared through {url})"),
            None => String::new(),
        },
        match args.max_streams_per_client {
            Some(max) => format!(", at most {max} downloads per client"),
            None => String::new(),
        },
    );
    if let Some(quota) = args.quota.describe() {
        println!("{quota}");
    }
    match args.digest.0 {
        Some(algorithm) => println!(
            "digests: when asked (Want-Repr-Digest, Want-Digest), from NAME.sha256 or \
             NAME.sha512 beside a file, else {algorithm} hashed in the background"
        ),
        None => println!("digests: none"),
    }
    let files: Vec<(String, u64)> = match source {
        Source::Dir(root) => {
            let mut files: Vec<_> = std::fs::read_dir(root)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .filter_map(|e| {
                            Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            files
        }
        Source::Bucket(bucket) => bucket.objects.clone(),
    };
    // Quoted for the shell when signed (the query holds `&`).
    let url_of = |path: &str| match keys {
        Some(_) => format!("'{base}{}'", signing::banner_link(keys, path)),
        None => format!("{base}{path}"),
    };
    for (name, len) in files.iter().take(20) {
        let encoded = utf8_percent_encode(name, SEGMENT);
        println!("  {}  ({len} bytes)", url_of(&format!("/{encoded}")));
    }
    let (name, url) = files
        .iter()
        .max_by_key(|(_, len)| *len)
        .map(|(name, _)| {
            (
                name.clone(),
                url_of(&format!("/{}", utf8_percent_encode(name, SEGMENT))),
            )
        })
        .unwrap_or_else(|| ("FILE".to_owned(), url_of("/FILE")));
    let curl = tls.map_or_else(|| "curl".to_owned(), tls::Tls::curl);
    if let Some(tls) = tls {
        println!("{}", tls.describe());
    }
    println!();
    println!("Try:");
    println!("  {curl} -s -r 0-99 {url} | wc -c               # the first 100 bytes (206)");
    println!("  {curl} -I {url}                               # headers only");
    println!("  {curl} --max-time 0.05 -o '{name}' {url}      # a download cut short...");
    println!("  {curl} -C - -o '{name}' {url}                 # ...resumed where it stopped");
    println!("  {curl} -H 'Range: bytes=0-9,20-29' {url}      # multipart/byteranges");
    if files.iter().any(|(name, _)| name == "notes.txt") && !codings.is_empty() {
        println!(
            "  {curl} -sI -H 'Accept-Encoding: br, gzip' {}   # a precompressed variant",
            url_of("/notes.txt")
        );
    }
    if args.digest.0.is_some() {
        println!(
            "  {curl} -sI -H 'Want-Repr-Digest: sha-256=10' {url}  # its digest (once hashed)"
        );
        println!("  aria2c -x4 {url}                            # verified by aria2");
    }
    println!();
    println!("Press Ctrl-C to stop.");
}
