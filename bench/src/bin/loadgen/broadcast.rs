//! Broadcast fan-out: `receivers` clients are connected; the first one also sends `bcast` events
//! with acks, each broadcast by the server to every client (the sender included). The sender
//! keeps `window` broadcasts in flight; one is done when every client has received it. Each
//! payload starts with its sequence number and send time, `SSSSSSSSSS,TTTTTTTTTTTT,xx…`, so
//! every delivery's latency is measured.
//!
//! With a sender address (a cluster: two server nodes tied by an adapter), the sender is a
//! client of its own on that other node: it sends every broadcast there, and only the
//! `receivers` clients of the measured node are counted (the sender reads and drops the copies
//! its own node delivers to it).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
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
    /// The node the broadcasts are sent to, when not the measured one.
    pub sender_addr: Option<std::net::SocketAddr>,
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
    let mut wss = conn::connect_many(ctx, 0, opts.receivers, 100, 16 * 1024).await?;
    ctx.probe.watch(&wss);
    // In a cluster, the sender goes first in `wss`, outside the counted receivers.
    if let Some(addr) = opts.sender_addr {
        let target = conn::Target {
            addr,
            tls: ctx.target.tls.clone(),
        };
        let src = conn::source_ip(ctx.net, opts.receivers);
        wss.insert(0, conn::connect(&target, src, 16 * 1024).await?);
    }
    let counted_sender = opts.sender_addr.is_none();
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
        let counted = counted_sender || sender.is_none();
        tasks.spawn(client(ws, shared.clone(), sender, quota, counted));
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

    /// Sends broadcasts until `window` are in flight (or the quota is sent).
    async fn fill(&self, ws: &mut Ws, sent: &mut u64, completed: u64, meter: &Meter) -> Result<()> {
        let err = |e: tokio_tungstenite::tungstenite::Error| format!("WebSocket: {e}");
        let mut fed = false;
        while *sent - completed < self.window && self.quota.is_none_or(|q| *sent < q) {
            ws.feed(self.frame(*sent, meter.now_us()))
                .await
                .map_err(err)?;
            *sent += 1;
            fed = true;
        }
        if fed {
            ws.flush().await.map_err(err)?;
        }
        Ok(())
    }
}

/// One client: counts what it receives (unless not `counted`: the sender on another node);
/// returns how many broadcasts it got (with a quota; an uncounted sender, how many it sent).
async fn client(
    mut ws: Ws,
    shared: Arc<Shared>,
    mut sender: Option<Sender>,
    quota: Option<u64>,
    counted: bool,
) -> Result<u64> {
    let meter = &shared.meter;
    let (mut sent, mut completed, mut acked, mut received) = (0u64, 0u64, 0u64, 0u64);
    let is_sender = sender.is_some();
    if let Some(s) = &sender {
        s.fill(&mut ws, &mut sent, completed, meter).await?;
    }
    loop {
        if !counted {
            // Done once its quota is sent and acked.
            if quota.is_some_and(|q| sent == q && acked == sent) {
                return Ok(sent);
            }
        } else {
            let all_received = quota.is_some_and(|q| received == q);
            let all_acked = !is_sender || acked == sent;
            if all_received && all_acked {
                return Ok(received);
            }
        }
        let next = match sender.as_mut() {
            Some(s) => tokio::select! {
                m = ws.next() => m,
                Some(_) = s.rx.recv() => {
                    completed += 1;
                    s.fill(&mut ws, &mut sent, completed, meter).await?;
                    continue;
                }
            },
            None => ws.next().await,
        };
        conn::each_ready_text(&mut ws, next, |t| {
            if let Some(body) = t.strip_prefix(PREFIX) {
                let field = |r: std::ops::Range<usize>| {
                    body.get(r)
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| format!("bad broadcast {t:.80?}"))
                };
                let (seq, at) = (field(0..10)?, field(11..23)?);
                if quota.is_some_and(|q| seq >= q) {
                    return Err(format!("broadcast {seq} was never sent"));
                }
                if !counted {
                    return Ok(());
                }
                meter.record(Duration::from_micros(meter.now_us().saturating_sub(at)));
                received += 1;
                let c = &shared.counts[(seq % RING as u64) as usize];
                if c.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
                    c.store(0, Ordering::Release);
                    let _ = shared.done.send(seq);
                }
            } else if t.strip_prefix("43").and_then(leading_number).is_some() && is_sender {
                acked += 1;
            } else {
                return Err(format!("unexpected message {t:.80?}"));
            }
            Ok(())
        })
        .await?;
    }
}
