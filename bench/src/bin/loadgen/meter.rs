//! Counting completed operations, their latencies, and the server's CPU and memory over a
//! measurement window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::probe::{Probe, Sample};

/// Shared by every client task of a scenario.
pub struct Meter {
    /// Operations completed so far (acks, deliveries, connects).
    done: AtomicU64,
    /// Latencies are recorded only inside the measurement window.
    recording: AtomicBool,
    hist: Mutex<Histogram<u64>>,
    /// Time zero for timestamps carried in payloads.
    pub epoch: Instant,
}

impl Meter {
    pub fn new() -> Meter {
        Meter {
            done: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            // 1 µs .. 100 s with 3 significant digits.
            hist: Mutex::new(Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")),
            epoch: Instant::now(),
        }
    }

    /// One operation completed after `latency`.
    pub fn record(&self, latency: Duration) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if self.recording.load(Ordering::Relaxed) {
            let us = (latency.as_micros() as u64).clamp(1, 100_000_000);
            if let Ok(mut h) = self.hist.lock() {
                let _ = h.record(us);
            }
        }
    }

    /// Microseconds since the epoch (for timestamps in payloads).
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    fn quantile_us(&self, q: f64) -> u64 {
        self.hist.lock().map_or(0, |h| h.value_at_quantile(q))
    }
}

/// The start of a measurement window: the server's and our own readings, and the count.
pub struct Mark {
    server: Sample,
    self_cpu_us: u64,
    done: u64,
}

impl Mark {
    pub fn server_at(&self) -> Instant {
        self.server.at
    }

    pub fn server_cpu_us(&self) -> u64 {
        self.server.cpu_us
    }

    pub fn take(meter: &Meter, probe: &Probe) -> Result<Mark, String> {
        Ok(Mark {
            server: probe.sample()?,
            self_cpu_us: probe.self_cpu_us(),
            done: meter.done(),
        })
    }
}

/// The figures of one window, as the JSON line the runner reads.
///
/// `base` is the server's reading before the first connection: RSS per connection is the
/// growth since then divided by `conns`.
pub fn report(meter: &Meter, base: &Sample, start: &Mark, end: &Mark, conns: usize) -> Value {
    let ops = end.done - start.done;
    let secs = end
        .server
        .at
        .duration_since(start.server.at)
        .as_secs_f64()
        .max(1e-9);
    let server_cpu = end.server.cpu_us.saturating_sub(start.server.cpu_us);
    let server_sys = end.server.sys_us.saturating_sub(start.server.sys_us);
    let self_cpu = end.self_cpu_us.saturating_sub(start.self_cpu_us);
    let segments = end.server.segments.saturating_sub(start.server.segments);
    let per_op = |us: u64| {
        if ops == 0 {
            0.0
        } else {
            us as f64 / ops as f64
        }
    };
    let rss_growth_kb = end.server.rss_kb as i64 - base.rss_kb as i64;
    let other_cpu = end
        .server
        .other_cpu_us
        .saturating_sub(start.server.other_cpu_us);
    json!({
        "other_server_cpu_us": other_cpu,
        "conns": conns,
        "ops": ops,
        "seconds": secs,
        "ops_per_s": ops as f64 / secs,
        "p50_us": meter.quantile_us(0.5),
        "p99_us": meter.quantile_us(0.99),
        "server_cpu_us": server_cpu,
        "cpu_us_per_op": per_op(server_cpu),
        "sys_us_per_op": per_op(server_sys),
        "loadgen_cpu_us_per_op": per_op(self_cpu),
        "server_segments": segments,
        "ops_per_segment": if segments == 0 { 0.0 } else { ops as f64 / segments as f64 },
        "sys_us_per_segment": if segments == 0 { 0.0 } else { server_sys as f64 / segments as f64 },
        "rss_base_kb": base.rss_kb,
        "rss_kb": end.server.rss_kb,
        "rss_per_conn_bytes": if conns == 0 { 0.0 } else { rss_growth_kb as f64 * 1024.0 / conns as f64 },
    })
}

/// How long a scenario runs: a timed window after a warm-up, or a fixed number of operations
/// (the smoke test, which checks every one).
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Timed {
        warmup: Duration,
        duration: Duration,
    },
    Count(u64),
}

/// Runs the measurement window of a timed scenario whose clients are already going.
pub async fn timed_window(
    meter: &Meter,
    probe: &Probe,
    warmup: Duration,
    duration: Duration,
) -> Result<(Mark, Mark), String> {
    tokio::time::sleep(warmup).await;
    let start = Mark::take(meter, probe)?;
    meter.set_recording(true);
    tokio::time::sleep(duration).await;
    meter.set_recording(false);
    let end = Mark::take(meter, probe)?;
    Ok((start, end))
}
