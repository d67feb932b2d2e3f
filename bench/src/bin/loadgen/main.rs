//! The load generator of the benchmarks: drives any Socket.IO v5 server over WebSocket with raw
//! Engine.IO/Socket.IO frames and prints one JSON line of figures. With `--pid`, it reads the
//! server's CPU time and RSS from `/proc` at the edges of the measurement window.
//!
//! ```text
//! loadgen echo  --addr 127.0.0.1:3000 --pid 1234 [--clients 50] [--outstanding 10] [--size 64]
//! loadgen bcast --addr 127.0.0.1:3000 --pid 1234 [--receivers 1000] [--window 4] [--size 64]
//!               [--sender-addr 127.0.0.1:3001 --sender-pid 1235]   a cluster: the sender on
//!               another node, whose CPU is read too (`other_server_cpu_us`)
//! loadgen idle  --addr 127.0.0.1:3000 --pid 1234 [--conns 10000] [--concurrency 100]
//!               [--warmup-conns 100] [--settle 3] [--hold]
//! common:       [--tls --ca FILE]   wss: TLS to a server whose certificate FILE's CA signed,
//!               a full handshake per connection (no session resumption)
//!               [--warmup 2] [--duration 10] | [--messages N]   timed window, or exactly N
//!               operations, each checked (the smoke test)
//!               [--src-net 1]   source addresses 127.<src-net>.x.y
//!               [--threads 1] [--timeout 120]
//! ```
//!
//! The figures: `ops` completed in the window (acks, deliveries or connects), `ops_per_s`,
//! `p50_us`/`p99_us` latency, the server's `cpu_us_per_op` and `rss_per_conn_bytes`, and our own
//! `loadgen_cpu_us_per_op` (to see whether the generator was the bottleneck).
//!
//! `idle --hold` is for several generators run together (see [`hold`]): it waits for a line on
//! stdin before its measured connections and holds them after the report until stdin closes.

mod broadcast;
mod conn;
mod echo;
mod hold;
mod idle;
mod meter;
mod probe;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;

use hold::Hold;
use meter::{Mark, Meter, Mode};
use probe::Probe;

/// What every scenario needs.
pub struct Ctx {
    pub target: conn::Target,
    pub net: u8,
    pub probe: Probe,
    /// Longest a counted run or the connection phase may take.
    pub timeout: Duration,
}

fn main() {
    match run() {
        Ok(Some(line)) => println!("{line}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}

fn secs(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| e.to_string())
}

/// The figures, or `None` when `--hold` has printed them already.
fn run() -> Result<Option<serde_json::Value>, String> {
    let mut args = pico_args::Arguments::from_env();
    let e = |e: pico_args::Error| e.to_string();
    let scenario: String = args.free_from_str().map_err(e)?;
    let addr: SocketAddr = args.value_from_str("--addr").map_err(e)?;
    let pid: Option<u32> = args.opt_value_from_str("--pid").map_err(e)?;
    let sender_addr: Option<SocketAddr> = args.opt_value_from_str("--sender-addr").map_err(e)?;
    let sender_pid: Option<u32> = args.opt_value_from_str("--sender-pid").map_err(e)?;
    let net: u8 = args
        .opt_value_from_str("--src-net")
        .map_err(e)?
        .unwrap_or(1);
    let threads: usize = args
        .opt_value_from_str("--threads")
        .map_err(e)?
        .unwrap_or(1);
    let timeout = secs(
        args.opt_value_from_str("--timeout")
            .map_err(e)?
            .unwrap_or(120.0),
    )?;
    let messages: Option<u64> = args.opt_value_from_str("--messages").map_err(e)?;
    let warmup = secs(
        args.opt_value_from_str("--warmup")
            .map_err(e)?
            .unwrap_or(2.0),
    )?;
    let duration = secs(
        args.opt_value_from_str("--duration")
            .map_err(e)?
            .unwrap_or(10.0),
    )?;
    let size: usize = args.opt_value_from_str("--size").map_err(e)?.unwrap_or(64);
    let hold = args.contains("--hold");
    let tls = args.contains("--tls");
    let ca: Option<std::path::PathBuf> = args.opt_value_from_str("--ca").map_err(e)?;
    let tls = match (tls, ca) {
        (true, Some(ca)) => {
            let pem = std::fs::read(&ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            Some(conn::tls_config(&pem)?)
        }
        (true, None) => {
            return Err("--tls needs --ca FILE (the CA of the server's certificate)".into())
        }
        (false, Some(_)) => return Err("--ca is for --tls".into()),
        (false, None) => None,
    };
    let mode = match messages {
        Some(n) => Mode::Count(n),
        None => Mode::Timed { warmup, duration },
    };
    enum Job {
        Echo(echo::Opts),
        Bcast(broadcast::Opts),
        Idle(idle::Opts),
    }
    let job = match scenario.as_str() {
        "echo" => Job::Echo(echo::Opts {
            clients: args
                .opt_value_from_str("--clients")
                .map_err(e)?
                .unwrap_or(50),
            outstanding: args
                .opt_value_from_str("--outstanding")
                .map_err(e)?
                .unwrap_or(10),
            size,
        }),
        "bcast" => Job::Bcast(broadcast::Opts {
            receivers: args
                .opt_value_from_str("--receivers")
                .map_err(e)?
                .unwrap_or(1000),
            window: args.opt_value_from_str("--window").map_err(e)?.unwrap_or(4),
            size,
            sender_addr,
        }),
        "idle" => Job::Idle(idle::Opts {
            conns: args
                .opt_value_from_str("--conns")
                .map_err(e)?
                .unwrap_or(10_000),
            concurrency: args
                .opt_value_from_str("--concurrency")
                .map_err(e)?
                .unwrap_or(100),
            warmup: args
                .opt_value_from_str("--warmup-conns")
                .map_err(e)?
                .unwrap_or(100),
            settle: secs(
                args.opt_value_from_str("--settle")
                    .map_err(e)?
                    .unwrap_or(3.0),
            )?,
        }),
        other => return Err(format!("unknown scenario {other:?} (echo, bcast, idle)")),
    };
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!("unknown arguments {rest:?}"));
    }
    if (sender_addr.is_some() || sender_pid.is_some()) && !matches!(job, Job::Bcast(_)) {
        return Err("--sender-addr and --sender-pid are for the bcast scenario".into());
    }
    if hold && !matches!(job, Job::Idle(_)) {
        return Err("--hold is for the idle scenario".into());
    }
    let mut hold = hold.then(Hold::start);
    raise_fd_limit();
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let ctx = Ctx {
        target: conn::Target { addr, tls },
        net,
        probe: Probe::new(pid, sender_pid),
        timeout,
    };
    let r = runtime.block_on(async {
        let mut r = match job {
            Job::Echo(o) => echo::run(&ctx, o, mode).await,
            Job::Bcast(o) => broadcast::run(&ctx, o, mode).await,
            Job::Idle(o) => idle::run(&ctx, o, hold.as_mut()).await,
        }?;
        r["loadgen_threads"] = threads.into();
        match hold.as_mut() {
            Some(h) => {
                h.say(&r.to_string())?;
                h.released().await;
                Ok(None)
            }
            None => Ok(Some(r)),
        }
    });
    // Connections are dropped with the process; no need to wait for their tasks.
    runtime.shutdown_background();
    r
}

/// Many connections need many descriptors: use the hard limit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit/setrlimit to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs the measurement of a scenario whose client tasks are going: a timed window, or (with a
/// count) until every client has finished, each having completed what `finished_ok` expects.
/// A client failing fails the run.
pub async fn drive(
    ctx: &Ctx,
    meter: &Meter,
    mode: Mode,
    tasks: &mut JoinSet<conn::Result<u64>>,
    finished_ok: impl Fn(u64) -> bool,
) -> conn::Result<(Mark, Mark)> {
    let failed = |r: Result<conn::Result<u64>, tokio::task::JoinError>| match r {
        Ok(Ok(n)) => format!("a client stopped after {n} operations"),
        Ok(Err(e)) => e,
        Err(e) => format!("client task: {e}"),
    };
    match mode {
        Mode::Timed { warmup, duration } => {
            tokio::select! {
                w = meter::timed_window(meter, &ctx.probe, warmup, duration) => w,
                Some(r) = tasks.join_next() => Err(failed(r)),
            }
        }
        Mode::Count(_) => {
            let start = Mark::take(meter, &ctx.probe)?;
            meter.set_recording(true);
            let all = async {
                while let Some(r) = tasks.join_next().await {
                    match r {
                        Ok(Ok(n)) if finished_ok(n) => {}
                        other => return Err(failed(other)),
                    }
                }
                Ok(())
            };
            tokio::time::timeout(ctx.timeout, all).await.map_err(|_| {
                format!(
                    "timed out after {:?} with {} operations done",
                    ctx.timeout,
                    meter.done()
                )
            })??;
            let end = Mark::take(meter, &ctx.probe)?;
            Ok((start, end))
        }
    }
}
