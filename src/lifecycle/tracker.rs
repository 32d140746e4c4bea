//! [`Tracker`]: one download's life, as the body lives it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use tokio::time::Instant;

use super::connection::IdleSignal;
use super::observer::{Download, End, Observer, Outcome};
use super::shutdown::Ticket;

/// Counts a download for shutdown, ends it at the shutdown deadline, and reports
/// it to the observer.
pub(crate) struct Tracker {
    ticket: Ticket,
    /// Resolves at the shutdown deadline; made once a shutdown has begun.
    cut_off: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Boxed: the body that holds the tracker is moved as it is wrapped.
    report: Option<Box<Report>>,
    idle: Option<IdleSignal>,
    sent: u64,
    /// The bytes of the whole body.
    total: u64,
    ended: bool,
}

/// What an observer needs.
struct Report {
    observer: Arc<dyn Observer>,
    download: Download,
    /// The start on tokio's clock (which tests can pause).
    started: Instant,
    every: Duration,
    next: Instant,
    /// Time spent holding a chunk for the throttle, and since when the held
    /// chunk waits.
    throttled: Duration,
    waiting_since: Option<Instant>,
}

impl Tracker {
    pub(crate) fn new(
        ticket: Ticket,
        observer: Option<(Arc<dyn Observer>, Download, Duration)>,
        idle: Option<IdleSignal>,
        total: u64,
    ) -> Self {
        let report = observer.map(|(observer, download, every)| {
            observer.start(&download);
            let started = Instant::now();
            Box::new(Report {
                started,
                next: started + every,
                observer,
                download,
                every,
                throttled: Duration::ZERO,
                waiting_since: None,
            })
        });
        Self {
            ticket,
            cut_off: None,
            report,
            idle,
            sent: 0,
            total,
            ended: false,
        }
    }

    /// Whether the download must end now, and how it ends: it was cancelled
    /// (see [`CancelHandle`](super::CancelHandle)), or the shutdown's grace
    /// period is over.
    ///
    /// A cancel is one atomic load and a waker registration per poll, only for
    /// downloads with an observer.
    /// Until a shutdown begins this is one atomic load per chunk. After, the
    /// deadline is registered for a wake-up at the body's next poll, which comes
    /// within a chunk's time (a tenth of a second of a throttled rate, much less
    /// unthrottled); a body that is not polled at all is a stalled client's,
    /// which only its connection can end (see `Connection`).
    pub(crate) fn poll_cut(&mut self, cx: &mut Context<'_>) -> Option<(Outcome, io::Error)> {
        if let Some(report) = &self.report {
            if report.download.cancel.poll_cancelled(cx) {
                self.end(Outcome::Cancelled);
                let error = io::Error::new(io::ErrorKind::ConnectionAborted, "download cancelled");
                return Some((Outcome::Cancelled, error));
            }
        }
        if !self.ticket.is_shutting_down() {
            return None;
        }
        let ticket = &self.ticket;
        let cut_off = self
            .cut_off
            .get_or_insert_with(|| Box::pin(ticket.cut_off()));
        cut_off.as_mut().poll(cx).is_ready().then(|| {
            self.ticket.mark_cut();
            self.end(Outcome::Shutdown);
            let error = io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server is shutting down",
            );
            (Outcome::Shutdown, error)
        })
    }

    /// Records `bytes` as sent.
    pub(crate) fn sent(&mut self, bytes: usize) {
        self.sent += bytes as u64;
        if let Some(report) = &mut self.report {
            let now = Instant::now();
            if now >= report.next {
                report.next = now + report.every;
                report.observer.progress(&report.download, self.sent);
            }
        }
    }

    /// The body holds a chunk that its throttle does not let go yet.
    pub(crate) fn throttle_waits(&mut self) {
        if let Some(report) = &mut self.report {
            report.waiting_since.get_or_insert_with(Instant::now);
        }
    }

    /// The throttle let the held chunk go (if one was held).
    pub(crate) fn throttle_passed(&mut self) {
        if let Some(report) = &mut self.report {
            if let Some(since) = report.waiting_since.take() {
                report.throttled += since.elapsed();
            }
        }
    }

    /// Records the end of the download, once.
    pub(crate) fn end(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.throttle_passed();
        if let Some(report) = &self.report {
            let end = End {
                outcome,
                sent: self.sent,
                elapsed: report.started.elapsed(),
                throttled: report.throttled,
            };
            report.observer.end(&report.download, &end);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // A server may drop a body once it has sent the last byte. A body
        // dropped after the grace period was cut by the shutdown: its connection
        // was closed (see `Connection`), or the server dropped it.
        let outcome = match &self.idle {
            _ if self.sent == self.total => Outcome::Complete,
            Some(signal) if signal.timed_out() => Outcome::IdleTimeout,
            _ if !self.ended && self.ticket.grace_over() => {
                self.ticket.mark_cut();
                Outcome::Shutdown
            }
            _ => Outcome::ClientGone,
        };
        self.end(outcome);
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("sent", &self.sent)
            .field("download", &self.report.as_ref().map(|r| r.download.id))
            .finish_non_exhaustive()
    }
}
