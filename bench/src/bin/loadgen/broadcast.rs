//! Broadcast fan-out: `receivers` clients are connected; the first one also sends `bcast` events
//! with acks, each broadcast by the server to every client (the sender included). The sender
//! keeps `window` broadcasts in flight; one is done when every client has received it. Each
//! payload starts with its sequence number and send time, `SSSSSSSSSS,TTTTTTTTTTTT,xx…`, so
//! every delivery's latency is measured.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, leading_number, Result, Ws};
use crate::meter::{self, Meter, Mode};
use crate::Ctx;

/// Broadcasts in flight are tracked in a ring this large.
const RING: usize = 4096;
const PREFIX: &str = "42[\"bcast\",\"";
/// `SSSSSSSSSS,TTTTTTTTTTTT,`
const STAMP: usize = 24;

pub struct Opts {
    pub receivers: usize,
    pub window: usize,
    pub size: usize,
}

struct Shared {
    meter: Meter,
    receivers: u32,
    /// Receipts per broadcast in flight.
    counts: Vec<AtomicU32>,
    /// Tells the sender a broadcast reached everyone.
    done: mpsc::UnboundedSender<u64>,
}

pub async fn run(ctx: &Ctx, opts: Opts, mode: Mode) -> Result<Value> {
    if opts.window == 0 || opts.window > RING / 2 || opts.receivers == 0 {
        return Err(format!(
            "need a window of 1..={} and at least one receiver",
            RING / 2
        ));
    }
    let size = opts.size.max(STAMP);
    let base = ctx.probe.sample()?;
    let wss = conn::connect_many(ctx, 0, opts.receivers, 100, 16 * 1024).await?;
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        meter: Meter::new(),
        receivers: opts.receivers as u32,
        counts: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        done: done_tx,
    });
    let quota = match mode {
        Mode::Count(n) => Some(n.div_ceil(opts.receivers as u64)),
        Mode::Timed { .. } => None,
    };
    let mut tasks = JoinSet::new();
    let mut done_rx = Some(done_rx);
    for ws in wss {
        let sender = done_rx.take().map(|rx| Sender {
            rx,
            window: opts.window as u64,
            size,
            quota,
        });
        tasks.spawn(client(ws, shared.clone(), sender, quota));
    }
    let meter = &shared.meter;
    let (start, end) = crate::drive(ctx, meter, mode, &mut tasks, |n| {
        quota.is_none_or(|q| n == q)
    })
    .await?;
    let mut r = meter::report(meter, &base, &start, &end, opts.receivers);
    r["scenario"] = "bcast".into();
    r["size"] = size.into();
    r["window"] = opts.window.into();
    Ok(r)
}

/// What the first client does besides receiving.
struct Sender {
    rx: mpsc::UnboundedReceiver<u64>,
    window: u64,
    size: usize,
    quota: Option<u64>,
}

impl Sender {
    fn frame(&self, seq: u64, now_us: u64) -> Message {
        let pad = "x".repeat(self.size - STAMP);
        Message::text(format!(
            "42{seq}[\"bcast\",\"{seq:010},{now_us:012},{pad}\"]"
        ))
    }
}

/// One client: counts what it receives; returns how many broadcasts it got (with a quota).
async fn client(
    mut ws: Ws,
    shared: Arc<Shared>,
    mut sender: Option<Sender>,
    quota: Option<u64>,
) -> Result<u64> {
    let err = |e: tokio_tungstenite::tungstenite::Error| format!("WebSocket: {e}");
    let meter = &shared.meter;
    let (mut sent, mut completed, mut acked, mut received) = (0u64, 0u64, 0u64, 0u64);
    if let Some(s) = &sender {
        while sent < s.window && s.quota.is_none_or(|q| sent < q) {
            ws.feed(s.frame(sent, meter.now_us())).await.map_err(err)?;
            sent += 1;
        }
        ws.flush().await.map_err(err)?;
    }
    loop {
        let all_received = quota.is_some_and(|q| received == q);
        let all_acked = sender.as_ref().is_none_or(|_| acked == sent);
        if all_received && all_acked {
            return Ok(received);
        }
        let next = match sender.as_mut() {
            Some(s) => tokio::select! {
                m = ws.next() => m,
                Some(_) = s.rx.recv() => {
                    completed += 1;
                    let mut fed = false;
                    while sent - completed < s.window && s.quota.is_none_or(|q| sent < q) {
                        ws.feed(s.frame(sent, meter.now_us())).await.map_err(err)?;
                        sent += 1;
                        fed = true;
                    }
                    if fed {
                        ws.flush().await.map_err(err)?;
                    }
                    continue;
                }
            },
            None => ws.next().await,
        };
        let mut next = next;
        let mut pong = false;
        loop {
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(err(e)),
                None => return Err("the server closed the connection".into()),
            };
            match msg {
                Message::Text(t) => {
                    let t = t.as_str();
                    if let Some(body) = t.strip_prefix(PREFIX) {
                        let seq = body
                            .get(..10)
                            .and_then(|s| s.parse::<u64>().ok())
                            .ok_or_else(|| format!("bad broadcast {t:.80?}"))?;
                        let at = body
                            .get(11..23)
                            .and_then(|s| s.parse::<u64>().ok())
                            .ok_or_else(|| format!("bad broadcast {t:.80?}"))?;
                        if quota.is_some_and(|q| seq >= q) {
                            return Err(format!("broadcast {seq} was never sent"));
                        }
                        let us = meter.now_us().saturating_sub(at);
                        meter.record(Duration::from_micros(us));
                        received += 1;
                        let c = &shared.counts[(seq % RING as u64) as usize];
                        if c.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
                            c.store(0, Ordering::Release);
                            let _ = shared.done.send(seq);
                        }
                    } else if let Some(rest) = t.strip_prefix("43") {
                        if sender.is_none() || leading_number(rest).is_none() {
                            return Err(format!("unexpected ack {t:.80?}"));
                        }
                        acked += 1;
                    } else if t == "2" {
                        pong = true;
                    } else {
                        return Err(format!("unexpected message {t:.80?}"));
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => return Err(format!("unexpected message {other:.80?}")),
            }
            match ws.next().now_or_never() {
                Some(n) => next = n,
                None => break,
            }
        }
        if pong {
            ws.send(Message::text("3")).await.map_err(err)?;
        }
    }
}
