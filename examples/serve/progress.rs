//! Running downloads on the terminal: live progress bars in a terminal (one per
//! download, updated in place), plain lines when the output is not one (a log
//! file, a pipe, CI).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tower_range_serve::lifecycle::{Download, End, Observer, Outcome};

/// The most bars shown at once.
const MAX_BARS: usize = 20;

/// Keeps the running downloads; shows them as bars, or `report` prints them.
#[derive(Clone)]
pub(crate) struct Progress {
    running: Arc<Mutex<BTreeMap<u64, Running>>>,
    /// The bars, when standard output is a terminal.
    bars: Option<MultiProgress>,
}

struct Running {
    download: Download,
    sent: u64,
    /// `sent` at the previous report, for the rate.
    reported: u64,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Bars if standard output is a terminal, plain lines otherwise.
    pub(crate) fn new() -> Self {
        Self {
            running: Arc::default(),
            bars: std::io::stdout().is_terminal().then(MultiProgress::new),
        }
    }

    /// Whether downloads are shown as live bars (no `report` needed).
    pub(crate) fn is_live(&self) -> bool {
        self.bars.is_some()
    }

    fn bar(&self, download: &Download) -> Option<ProgressBar> {
        let bars = self.bars.as_ref()?;
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = bars.add(ProgressBar::new(download.total).with_style(style));
        bar.set_prefix(format!("#{} {}", download.id, client(download)));
        bar.set_message(download.path.clone());
        Some(bar)
    }

    /// A line above the bars, or on its own.
    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => println!("{text}"),
        }
    }
}

impl Observer for Progress {
    fn start(&self, download: &Download) {
        let mut running = self.lock();
        // At most a screenful of bars; the others still get their end line.
        let bars = running.values().filter(|r| r.bar.is_some()).count();
        let bar = if bars < MAX_BARS {
            self.bar(download)
        } else {
            None
        };
        let entry = Running {
            download: download.clone(),
            sent: 0,
            reported: 0,
            bar,
        };
        running.insert(download.id, entry);
    }

    fn progress(&self, download: &Download, sent: u64) {
        if let Some(running) = self.lock().get_mut(&download.id) {
            running.sent = sent;
            if let Some(bar) = &running.bar {
                bar.set_position(sent);
            }
        }
    }

    fn end(&self, download: &Download, end: &End) {
        if let Some(Running { bar: Some(bar), .. }) = self.lock().remove(&download.id) {
            bar.finish_and_clear();
        }
        let how = match end.outcome {
            Outcome::Complete => "complete".to_owned(),
            Outcome::ClientGone => "client gone".to_owned(),
            Outcome::IdleTimeout => "idle timeout".to_owned(),
            Outcome::Shutdown => "cut by shutdown".to_owned(),
            Outcome::Failed(kind) => format!("failed ({kind})"),
            Outcome::Cancelled => "cancelled".to_owned(),
            other => format!("{other:?}"),
        };
        self.line(&format!(
            "  #{} {} {}: {how}, {} in {:.1} s",
            download.id,
            client(download),
            download.path,
            mib(end.sent),
            end.elapsed.as_secs_f64()
        ));
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
