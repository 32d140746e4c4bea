//! Live progress of running downloads on the terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_range_serve::lifecycle::{Download, End, Observer, Outcome};

/// Keeps the running downloads; `report` prints them.
#[derive(Default, Clone)]
pub(crate) struct Progress {
    running: Arc<Mutex<BTreeMap<u64, Running>>>,
}

struct Running {
    download: Download,
    sent: u64,
    /// `sent` at the previous report, for the rate.
    reported: u64,
}

impl Observer for Progress {
    fn start(&self, download: &Download) {
        let running = Running {
            download: download.clone(),
            sent: 0,
            reported: 0,
        };
        self.lock().insert(download.id, running);
    }

    fn progress(&self, download: &Download, sent: u64) {
        if let Some(running) = self.lock().get_mut(&download.id) {
            running.sent = sent;
        }
    }

    fn end(&self, download: &Download, end: &End) {
        self.lock().remove(&download.id);
        let how = match end.outcome {
            Outcome::Complete => "complete".to_owned(),
            Outcome::ClientGone => "client gone".to_owned(),
            Outcome::IdleTimeout => "idle timeout".to_owned(),
            Outcome::Shutdown => "cut by shutdown".to_owned(),
            Outcome::Failed(kind) => format!("failed ({kind})"),
            other => format!("{other:?}"),
        };
        println!(
            "  #{} {} {}: {how}, {} in {:.1} s",
            download.id,
            client(download),
            download.path,
            mib(end.sent),
            end.elapsed.as_secs_f64()
        );
    }
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints one line per running download every `every`, while there are any.
    pub(crate) async fn report(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let mut running = self.lock();
            if running.is_empty() {
                continue;
            }
            let mut text = format!("{} running:\n", running.len());
            for entry in running.values_mut().take(20) {
                let download = &entry.download;
                let rate = (entry.sent - entry.reported) as f64 / every.as_secs_f64();
                entry.reported = entry.sent;
                let _ = writeln!(
                    text,
                    "  #{} {} {} {} of {} ({:.0}%) {}/s",
                    download.id,
                    client(download),
                    download.path,
                    mib(entry.sent),
                    mib(download.total),
                    entry.sent as f64 * 100.0 / download.total.max(1) as f64,
                    mib(rate as u64),
                );
            }
            print!("{text}");
        }
    }
}

fn client(download: &Download) -> String {
    download
        .client
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
