//! What `weir perf` shows: a live progress bar while it runs, and a summary at the
//! end, as text or as one JSON object.
//!
//! Counters are shared atomics that the workers bump per record; a ticker task
//! turns them into records/s and MB/s over the last interval for the bar. Latency
//! goes into an HDR histogram in microseconds (3 significant digits, so every
//! percentile is within 0.1% of the true value) and is reported in ms.
//! MB means 10^6 bytes, as in librdkafka's `rdkafka_performance`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cmd::common::{outln, JsonObject};

/// How often the progress bar's rates are recomputed.
const TICK: Duration = Duration::from_millis(250);
/// The largest latency the histogram tracks exactly (larger ones count as this).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Progress shared between the workers and the bar.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Records done (acknowledged, or consumed).
    pub(crate) records: AtomicU64,
    /// Their bytes.
    pub(crate) bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A new latency histogram (µs).
pub(crate) fn histogram() -> Histogram<u64> {
    // Constant bounds that `new_with_bounds` accepts (low >= 1, high >= 2 * low,
    // sigfig <= 5): this cannot fail at run time.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid constant histogram bounds")
}

/// The live bar on stderr (drawn only on a terminal).
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
    ticker: JoinHandle<()>,
}

impl Progress {
    /// Starts the bar: `total` records, or a spinner when the end is a time.
    pub(crate) fn start(total: Option<u64>, counters: Arc<Counters>) -> Progress {
        let target = ProgressDrawTarget::stderr_with_hz(4);
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), target);
                let style = ProgressStyle::with_template(
                    "[{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, target);
                let style =
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar
            }
        };
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64, 0u64);
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                let (records, bytes) = counters.get();
                let now = Instant::now();
                let secs = now.duration_since(last.0).as_secs_f64().max(1e-9);
                let rate = records.saturating_sub(last.1) as f64 / secs;
                let mb = bytes.saturating_sub(last.2) as f64 / secs / 1e6;
                shown.set_position(records);
                shown.set_message(format!("{rate:.0} records/s, {mb:.1} MB/s"));
                last = (now, records, bytes);
            }
        });
        Progress { bar, ticker }
    }

    /// Removes the bar, so the summary stands alone.
    pub(crate) fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// The figures of a finished run.
#[derive(Debug)]
pub(crate) struct Summary {
    /// "sent" or "received".
    pub(crate) verb: &'static str,
    /// What the latency measures, for the text summary.
    pub(crate) latency_label: &'static str,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latency_us: Histogram<u64>,
}

impl Summary {
    fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A percentile in ms (0 with no samples).
    fn ms(&self, quantile: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.max() as f64 / 1000.0
    }

    /// Prints the summary: one JSON object, or two lines of text.
    pub(crate) fn print(&self, json: bool) {
        if json {
            let latency = JsonObject::new()
                .float("mean", self.latency_us.mean() / 1000.0)
                .float("p50", self.ms(0.50))
                .float("p95", self.ms(0.95))
                .float("p99", self.ms(0.99))
                .float("p999", self.ms(0.999))
                .float("max", self.max_ms())
                .finish();
            let out = JsonObject::new()
                .int("records", clamp(self.records))
                .int("bytes", clamp(self.bytes))
                .int("errors", clamp(self.errors))
                .float("elapsed_sec", self.elapsed.as_secs_f64())
                .float("records_per_sec", self.records_per_sec())
                .float("mb_per_sec", self.mb_per_sec())
                .raw("latency_ms", &latency)
                .finish();
            outln!("{out}");
            return;
        }
        outln!(
            "{} records {} in {:.2} s: {:.1} records/s, {:.2} MB/s{}",
            self.records,
            self.verb,
            self.elapsed.as_secs_f64(),
            self.records_per_sec(),
            self.mb_per_sec(),
            if self.errors > 0 {
                format!(", {} errors", self.errors)
            } else {
                String::new()
            }
        );
        outln!(
            "{} (ms): mean {:.2}, p50 {:.2}, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
            self.latency_label,
            self.latency_us.mean() / 1000.0,
            self.ms(0.50),
            self.ms(0.95),
            self.ms(0.99),
            self.ms(0.999),
            self.max_ms()
        );
    }
}

/// A count as a JSON integer.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
