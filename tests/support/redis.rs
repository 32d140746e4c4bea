//! A real `redis-server` for a test, on a Unix socket in a temporary directory
//! (no TCP port at all), killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// One `redis-server` process; [`kill`](Self::kill) and [`start`](Self::start)
/// simulate an outage on the same address.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or returns `None` (after saying why) when `redis-server`
    /// is not installed and this is not CI. `.ci/run` installs it and sets `CI`.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: redis-server is not installed (CI installs it in .ci/run)"
            );
            eprintln!(
                "{test}: SKIPPED, redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        let mut server = Self {
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.start();
        Some(server)
    }

    /// The URL to give `RedisLimits::new`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Starts the server (again) and waits until it says it is ready.
    pub fn start(&mut self) {
        use std::io::BufRead;
        assert!(self.child.is_none(), "already running");
        let _ = std::fs::remove_file(self.socket());
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "notice", "--logfile", ""])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut log = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let read = log.read_line(&mut line).unwrap();
            assert!(read > 0, "redis-server exited before it was ready");
            // "Ready to accept connections" (TCP) or "The server is now ready to
            // accept connections at <socket>" (Unix socket only).
            if line
                .to_ascii_lowercase()
                .contains("ready to accept connections")
            {
                break;
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// Kills the server at once (`SIGKILL`: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command and returns its reply (a simple string, integer or
    /// bulk string) as text.
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{BufRead, Read, Write};
        let stream = std::os::unix::net::UnixStream::connect(self.socket()).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        (&stream).write_all(request.as_bytes()).unwrap();
        let mut reply = std::io::BufReader::new(stream);
        let mut line = String::new();
        reply.read_line(&mut line).unwrap();
        match line.strip_prefix('$') {
            Some(len) => match len.trim().parse::<usize>() {
                Ok(len) => {
                    let mut data = vec![0; len + 2];
                    reply.read_exact(&mut data).unwrap();
                    String::from_utf8_lossy(&data[..len]).into_owned()
                }
                Err(_) => String::new(), // a nil reply
            },
            None => line.trim_end().to_owned(),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
