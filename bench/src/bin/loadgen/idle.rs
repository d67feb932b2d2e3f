//! Idle connections: opens `conns` Socket.IO connections (`concurrency` handshakes at a time)
//! after `warmup` connections, then holds them idle (answering pings). Reports the connect
//! rate, the handshake latency, the server's CPU per connect and its memory per connection
//! once they have been idle for `settle`. With `--hold` ([`crate::hold`]), it waits for the go
//! after the warm-up connections and keeps every connection open after the report.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use crate::conn::{self, Result};
use crate::hold::Hold;
use crate::meter::{self, Mark, Meter};
use crate::Ctx;

pub struct Opts {
    pub conns: usize,
    pub concurrency: usize,
    pub warmup: usize,
    pub settle: Duration,
}

/// Idle clients need little read buffer.
const READ_BUFFER: usize = 1024;

/// Microseconds since the Unix epoch: comparable between load generators run together.
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub async fn run(ctx: &Ctx, opts: Opts, hold: Option<&mut Hold>) -> Result<Value> {
    let meter = Arc::new(Meter::new());
    // Connections made before the baseline, so one-off costs (code paths warming up, pools,
    // lazily built tables) do not count as per-connection memory.
    let warm = conn::connect_many(ctx, 0, opts.warmup, opts.concurrency, READ_BUFFER).await?;
    for ws in warm {
        tokio::spawn(conn::idle(ws));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(hold) = hold {
        hold.ready().await?;
    }
    let base = ctx.probe.sample()?;
    let start = Mark::take(&meter, &ctx.probe)?;
    let start_unix_us = unix_us();
    meter.set_recording(true);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<()>>();
    let connect_all = async {
        for i in opts.warmup..opts.warmup + opts.conns {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let (tx, meter, target) = (tx.clone(), meter.clone(), ctx.target.clone());
            let src = conn::source_ip(ctx.net, i);
            tokio::spawn(async move {
                let t = Instant::now();
                let r = conn::connect(&target, src, READ_BUFFER).await;
                drop(permit);
                match r {
                    Ok(ws) => {
                        meter.record(t.elapsed());
                        let _ = tx.send(Ok(()));
                        conn::idle(ws).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        }
        for _ in 0..opts.conns {
            match rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Err("connection tasks vanished".to_string()),
            }
        }
        Ok(())
    };
    tokio::time::timeout(ctx.timeout, connect_all)
        .await
        .map_err(|_| {
            format!(
                "timed out after {:?} with {} of {} connections made",
                ctx.timeout,
                meter.done(),
                opts.conns
            )
        })??;
    let end = Mark::take(&meter, &ctx.probe)?;
    let end_unix_us = unix_us();
    meter.set_recording(false);
    tokio::time::sleep(opts.settle).await;
    let held = ctx.probe.sample()?;
    let mut r = meter::report(&meter, &base, &start, &end, opts.conns);
    r["scenario"] = "idle".into();
    r["start_unix_us"] = start_unix_us.into();
    r["end_unix_us"] = end_unix_us.into();
    r["rss_kb"] = held.rss_kb.into();
    let growth = held.rss_kb as f64 - base.rss_kb as f64;
    r["rss_per_conn_bytes"] = (growth * 1024.0 / opts.conns.max(1) as f64).into();
    let idle_secs = held.at.duration_since(end.server_at()).as_secs_f64();
    r["idle_cpu_percent"] =
        (held.cpu_us.saturating_sub(end.server_cpu_us()) as f64 / 1e4 / idle_secs.max(1e-9)).into();
    Ok(r)
}
