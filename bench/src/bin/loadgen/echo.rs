//! Echo: each client keeps `outstanding` `echo` events with acks in flight
//! (`42<id>["echo","xx…"]`) and checks every ack (`43<id>["xx…"]`) carries the payload back.

use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, leading_number, Result, Ws};
use crate::meter::{self, Meter, Mode};
use crate::Ctx;

/// Most acks a client may wait for at once.
const MAX_OUTSTANDING: usize = 1000;

pub struct Opts {
    pub clients: usize,
    pub outstanding: usize,
    pub size: usize,
}

pub async fn run(ctx: &Ctx, opts: Opts, mode: Mode) -> Result<Value> {
    if opts.outstanding == 0 || opts.outstanding > MAX_OUTSTANDING || opts.clients == 0 {
        return Err(format!(
            "need 1..={MAX_OUTSTANDING} outstanding acks and at least one client"
        ));
    }
    let base = ctx.probe.sample()?;
    let meter = Arc::new(Meter::new());
    let wss = conn::connect_many(ctx, 0, opts.clients, 50, 64 * 1024).await?;
    ctx.probe.watch(&wss);
    let quota = match mode {
        Mode::Count(n) => Some(n.div_ceil(opts.clients as u64)),
        Mode::Timed { .. } => None,
    };
    let payload: Arc<str> = "x".repeat(opts.size).into();
    let mut tasks = JoinSet::new();
    for ws in wss {
        tasks.spawn(client(
            ws,
            payload.clone(),
            opts.outstanding as u64,
            quota,
            meter.clone(),
        ));
    }
    let (start, end) = crate::drive(ctx, &meter, mode, &mut tasks, |n| {
        quota.is_none_or(|q| n == q)
    })
    .await?;
    let mut r = meter::report(&meter, &base, &start, &end, opts.clients);
    r["scenario"] = "echo".into();
    r["size"] = opts.size.into();
    r["outstanding"] = opts.outstanding.into();
    Ok(r)
}

/// One client; returns how many acks it got (when it has a quota).
async fn client(
    mut ws: Ws,
    payload: Arc<str>,
    outstanding: u64,
    quota: Option<u64>,
    meter: Arc<Meter>,
) -> Result<u64> {
    let expected = format!("[\"{payload}\"]");
    // Acks may come back in any order (socketioxide runs each handler in its own task).
    let mut in_flight: Vec<(u64, Instant)> = Vec::with_capacity(outstanding as usize);
    let (mut sent, mut acked) = (0u64, 0u64);
    let err = |e: tokio_tungstenite::tungstenite::Error| format!("WebSocket: {e}");
    loop {
        while sent - acked < outstanding && quota.is_none_or(|q| sent < q) {
            in_flight.push((sent, Instant::now()));
            let frame = format!("42{sent}[\"echo\",\"{payload}\"]");
            ws.feed(Message::text(frame)).await.map_err(err)?;
            sent += 1;
        }
        ws.flush().await.map_err(err)?;
        if quota.is_some_and(|q| acked == q) {
            return Ok(acked);
        }
        // Handle every message already received, then answer them in one write.
        let first = ws.next().await;
        conn::each_ready_text(&mut ws, first, |t| {
            let rest = t
                .strip_prefix("43")
                .ok_or_else(|| format!("unexpected message {t:.80?}"))?;
            let (id, body) = leading_number(rest).ok_or_else(|| format!("bad ack {t:?}"))?;
            let i = in_flight
                .iter()
                .position(|(x, _)| *x == id)
                .ok_or_else(|| format!("ack {id} was not asked for"))?;
            let (_, at) = in_flight.swap_remove(i);
            if body != expected {
                return Err(format!("ack {id} carries {body:.80?}"));
            }
            meter.record(at.elapsed());
            acked += 1;
            Ok(())
        })
        .await?;
    }
}
