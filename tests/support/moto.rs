//! A real S3 API server for a test: moto's server mode (`moto_server`) on a free
//! loopback port, killed when dropped.

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// One `moto_server` process.
pub struct MotoServer {
    child: Child,
    port: u16,
    /// The request lines moto has logged so far (`GET /bucket/key HTTP/1.1`).
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl MotoServer {
    /// Starts a server, or returns `None` (after saying why) when `moto_server`
    /// is not installed and this is not CI. `.ci/run` installs it and sets `CI`.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let installed = Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: moto_server is not installed (CI installs it in .ci/run)"
            );
            eprintln!("{test}: SKIPPED, moto_server is not installed (pip install 'moto[server]')");
            return None;
        }
        // A port that was free a moment ago; another process may take it in
        // between, so try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(server) = Self::start(port) {
                return Some(server);
            }
        }
        panic!("{test}: moto_server did not start");
    }

    /// Starts the server on `port` and waits until it says it is running.
    fn start(port: u16) -> Option<Self> {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server starts");
        let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if log.read_line(&mut line).unwrap_or(0) == 0 {
                // Exited (the port was taken, say).
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            if line.contains("Running on") {
                break;
            }
        }
        // Keep reading its log (one line per request, written when the request
        // is done) so it never blocks, and keep the request lines.
        let requests = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if let Some((_, request)) = line.split_once('"') {
                    let request = request.split('"').next().unwrap_or_default().to_owned();
                    kept.0.lock().unwrap().push(request);
                    kept.1.notify_all();
                }
            }
        });
        Some(Self {
            child,
            port,
            log: requests,
        })
    }

    /// The request lines that start with `prefix` (`"GET /bucket/key"`), once at
    /// least `at_least` of them are logged (moto logs a request when it is done),
    /// or after 10 seconds.
    pub fn requests(&self, prefix: &str, at_least: usize) -> Vec<String> {
        let (lines, logged) = &*self.log;
        let matching = |lines: &Vec<String>| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.starts_with(prefix))
                .cloned()
                .collect()
        };
        let (lines, _) = logged
            .wait_timeout_while(lines.lock().unwrap(), Duration::from_secs(10), |lines| {
                matching(lines).len() < at_least
            })
            .unwrap();
        matching(&lines)
    }

    /// The endpoint URL, as `AWS_ENDPOINT` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    /// A client for `bucket` on this server.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(self.endpoint())
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .with_allow_http(true)
                .build()
                .unwrap(),
        )
    }
}

impl MotoServer {
    /// A client for `bucket` that reaches this server through `proxy` (a
    /// fault-injecting one), retrying `retries` times with short backoffs,
    /// giving up on a request after `timeout`, and keeping no idle connection
    /// (so none outlives a download).
    pub fn store_through(
        &self,
        bucket: &str,
        proxy: std::net::SocketAddr,
        retries: usize,
        timeout: Duration,
    ) -> Arc<dyn ObjectStore> {
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(50),
                base: 2.0,
            },
            max_retries: retries,
            retry_timeout: Duration::from_secs(20),
        };
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(format!("http://{proxy}"))
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .with_allow_http(true)
                .with_retry(retry)
                .with_client_options(
                    object_store::ClientOptions::new()
                        .with_allow_http(true)
                        .with_pool_max_idle_per_host(0)
                        .with_timeout(timeout),
                )
                .build()
                .unwrap(),
        )
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
