//! A broadcast encodes its packet once and queues it to every target without an allocation per
//! recipient: what `emit` allocates on the calling thread does not grow with the number of
//! sockets it reaches (counted by this test binary's allocator).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use polysio::client::{ClientBuilder, Socket as ClientSocket, TransportKind};
use polysio::server::{Namespace, Server, ServerConfig};
use polysio::Value;

/// Counts the allocations of the threads that asked for it.
struct Counting;

thread_local! {
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn bump() {
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const EMITS: usize = 20;

/// Connects `n` more WebSocket clients listening to `tick`.
async fn connect(url: &str, n: usize, out: &mut Vec<(ClientSocket, Events)>) {
    for _ in 0..n {
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(url.to_owned()).transports([TransportKind::Websocket]),
            "/",
            &ev,
            &["tick"],
        );
        out.push((s, ev));
    }
    for (_, ev) in out.iter().rev().take(n) {
        ev.wait("connect").await;
    }
}

/// Waits until every client got `ticks` more `tick` events.
async fn delivered(clients: &[(ClientSocket, Events)], ticks: usize) {
    for (_, ev) in clients {
        for _ in 0..ticks {
            ev.wait("tick").await;
        }
    }
}

/// Allocations made on this thread by a burst of `EMITS` broadcasts, after the same burst once,
/// waiting for every delivery. The runtime has one thread, this test's: nothing is written
/// during a burst.
async fn allocs_per_round(nsp: &Namespace, clients: &[(ClientSocket, Events)]) -> usize {
    // The same burst once first: the sockets' queues grow to hold it (they keep that capacity).
    for i in 0..EMITS {
        nsp.emit("tick", vec![Value::from(i as i64)]).unwrap();
    }
    delivered(clients, EMITS).await;
    let args: Vec<Vec<Value>> = (0..EMITS).map(|i| vec![Value::from(i as i64)]).collect();
    COUNT.with(|c| c.set(Some(0)));
    for a in args {
        nsp.emit("tick", a).unwrap();
    }
    let n = COUNT.with(|c| c.take()).unwrap();
    delivered(clients, EMITS).await;
    n
}

#[tokio::test]
async fn a_broadcast_allocates_nothing_per_recipient() {
    let io = Server::new(ServerConfig::default());
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", addr.port());
    let nsp = io.of("/");
    let mut clients = Vec::new();
    connect(&url, 20, &mut clients).await;
    let few = allocs_per_round(&nsp, &clients).await;
    connect(&url, 180, &mut clients).await;
    assert_eq!(nsp.sockets().len(), 200);
    let many = allocs_per_round(&nsp, &clients).await;
    eprintln!("allocations for {EMITS} broadcasts: {few} to 20 sockets, {many} to 200 sockets");
    // Encoding and the frames: a handful per broadcast, whatever the audience, and the flush
    // task's list of sockets, once per burst (one allocation per recipient would be 200 per
    // broadcast).
    assert!(
        many <= few + 8,
        "{many} allocations to 200 sockets vs {few} to 20"
    );
    assert!(
        many <= EMITS * 10,
        "{many} allocations for {EMITS} broadcasts"
    );
}
