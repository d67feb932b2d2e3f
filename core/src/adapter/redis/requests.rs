//! The requests a namespace adapter has sent to the other nodes and is waiting on, shared by
//! both formats: answers counted against the expected number of nodes, and the client counts
//! and acks of broadcasts with acks. Every wait has a timeout, and every entry is removed when
//! its wait ends.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::adapter::classic_wire::socket_info_of;
use crate::adapter::SocketInfo;
use crate::error::{Error, Result};
use crate::value::Value;

/// What a pending request collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Collecting {
    Sockets,
    Rooms,
    ServerSide,
}

struct Collect {
    what: Collecting,
    expected: usize,
    got: usize,
    items: Vec<Value>,
    done: Option<oneshot::Sender<Vec<Value>>>,
}

/// What a node answers to a broadcast with acks: its client count, then each client's ack.
pub(super) enum AckEvent {
    Count(usize),
    Ack(Vec<Value>),
}

enum Pending {
    Collect(Collect),
    Ack(mpsc::UnboundedSender<AckEvent>),
}

/// The pending requests of one namespace adapter, by request id.
#[derive(Default)]
pub(super) struct Requests {
    map: Mutex<HashMap<String, Pending>>,
}

impl Requests {
    pub(super) fn is_pending(&self, id: &str) -> bool {
        self.map.lock().is_ok_and(|r| r.contains_key(id))
    }

    /// Waits for `expected` answers to request `id` (published by `publish`, called once the
    /// request is registered), for at most `timeout`. `name` and `what` go in the log of a
    /// timeout.
    pub(super) async fn collect(
        &self,
        id: String,
        what: Collecting,
        expected: usize,
        timeout: Duration,
        name: &str,
        publish: impl FnOnce(),
    ) -> Result<Vec<Value>> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut r) = self.map.lock() {
            r.insert(
                id.clone(),
                Pending::Collect(Collect {
                    what,
                    expected,
                    got: 0,
                    items: Vec::new(),
                    done: Some(tx),
                }),
            );
        }
        publish();
        let r = tokio::time::timeout(timeout, rx).await;
        let left = self.map.lock().ok().and_then(|mut r| r.remove(&id));
        match r {
            Ok(Ok(items)) => Ok(items),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                let got = match left {
                    Some(Pending::Collect(c)) => c.got,
                    _ => 0,
                };
                // The error is the typed timeout; the log says who is missing (a node that is
                // up but stuck, or an extra subscriber that never answers,
                // socket.io-redis-adapter #406).
                tracing::warn!(
                    "redis adapter: {what:?} request on {name} timed out after {timeout:?}: {got} of the {expected} other nodes counted by Redis answered",
                );
                Err(Error::Timeout(timeout))
            }
        }
    }

    /// One node's answer to request `id`: `items` picks what it brings for what the request
    /// collects. Unknown ids (late answers, other nodes' requests) are ignored.
    pub(super) fn answer(&self, id: &str, items: impl FnOnce(Collecting) -> Vec<Value>) {
        let Ok(mut reqs) = self.map.lock() else {
            return;
        };
        let finished = match reqs.get_mut(id) {
            Some(Pending::Collect(c)) => {
                c.got += 1;
                c.items.extend(items(c.what));
                c.got >= c.expected
            }
            _ => false,
        };
        if finished {
            if let Some(Pending::Collect(mut c)) = reqs.remove(id) {
                if let Some(done) = c.done.take() {
                    let _ = done.send(c.items);
                }
            }
        }
    }

    /// A client count or an ack for the broadcast with acks `id`.
    pub(super) fn ack_event(&self, id: &str, ev: AckEvent) {
        if let Some(Pending::Ack(tx)) = self.map.lock().ok().as_ref().and_then(|r| r.get(id)) {
            let _ = tx.send(ev);
        }
    }

    /// Registers the broadcast with acks `id`; `tx` also takes this node's own acks.
    pub(super) fn start_acks(
        &self,
        id: &str,
    ) -> (
        mpsc::UnboundedSender<AckEvent>,
        mpsc::UnboundedReceiver<AckEvent>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut r) = self.map.lock() {
            r.insert(id.to_owned(), Pending::Ack(tx.clone()));
        }
        (tx, rx)
    }

    pub(super) fn forget(&self, id: &str) {
        if let Ok(mut r) = self.map.lock() {
            r.remove(id);
        }
    }
}

/// Gathers the acks of a broadcast with acks: `local_count` from this node, then one client
/// count from each other node (as many nodes as `servers` says, this one included) and as many
/// acks as they announced; [`Error::Timeout`] after `timeout`.
pub(super) async fn gather_acks(
    servers: impl Future<Output = Result<usize>>,
    mut rx: mpsc::UnboundedReceiver<AckEvent>,
    local_count: usize,
    timeout: Duration,
) -> Result<Vec<Vec<Value>>> {
    let wait = async {
        let mut servers = std::pin::pin!(servers.fuse());
        let mut expected_servers = None;
        let mut seen_servers = 1;
        let mut expected_acks = local_count;
        let mut acks = Vec::with_capacity(local_count);
        loop {
            if expected_servers.is_some_and(|n| seen_servers >= n) && acks.len() >= expected_acks {
                return Ok(acks);
            }
            tokio::select! {
                n = &mut servers, if expected_servers.is_none() => {
                    expected_servers = Some(n?.max(1));
                }
                ev = rx.recv() => match ev {
                    Some(AckEvent::Count(n)) => {
                        seen_servers += 1;
                        expected_acks += n;
                    }
                    Some(AckEvent::Ack(a)) => acks.push(a),
                    None => return Err(Error::Closed),
                },
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .unwrap_or(Err(Error::Timeout(timeout)))
}

/// Asks the other nodes, as many as `servers` counts less this one, with `ask` (given their
/// number) and gives its answers; none, and no request, when there are no other nodes.
pub(super) async fn ask_others<F>(
    servers: impl Future<Output = Result<usize>>,
    ask: impl FnOnce(usize) -> F,
) -> Result<Vec<Value>>
where
    F: Future<Output = Result<Vec<Value>>>,
{
    match servers.await?.saturating_sub(1) {
        0 => Ok(Vec::new()),
        others => ask(others).await,
    }
}

/// fetchSockets across nodes: `local`, then the sockets in the other nodes' answers (asked as
/// [`ask_others`] does); an answer's socket without id or rooms is counted as malformed.
pub(super) async fn fetch_across<F>(
    shared: std::sync::Arc<Shared>,
    mut local: Vec<SocketInfo>,
    servers: impl Future<Output = Result<usize>>,
    ask: impl FnOnce(usize) -> F,
) -> Result<Vec<SocketInfo>>
where
    F: Future<Output = Result<Vec<Value>>>,
{
    for item in &ask_others(servers, ask).await? {
        match socket_info_of(item) {
            Some(s) => local.push(s),
            None => shared.malformed("fetchSockets answer", "a socket without id or rooms"),
        }
    }
    Ok(local)
}
