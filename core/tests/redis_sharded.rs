//! The sharded `@socket.io/redis-adapter` format (`createShardedAdapter`, SPUBLISH/SSUBSCRIBE)
//! against real peers: a real `redis-server` 7 (started here on a free port), polysio nodes with
//! [`RedisConfig::sharded`], and npm socket.io 4.8 nodes with `createShardedAdapter` of
//! `@socket.io/redis-adapter` 8.3 in its default "dynamic" mode (tests/node/redis-cluster-node.js
//! `sharded`). Every cluster operation is asked from each side (the harness of
//! redis_classic.rs; the format has no allRooms across nodes).
#![cfg(feature = "redis")]

#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::time::{Duration, Instant};

use polysio::adapter::redis::{RedisConfig, RedisFormat, SubscriptionMode};
use redis_cluster::*;
use serde_json::json;

async fn sharded(url: &str) -> Node {
    Node::rust_config(RedisConfig::sharded(url)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_polysio_nodes() {
    let redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = sharded(&redis.url()).await;
    assert_eq!(a.redis().uid().len(), 16);
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    scenarios([&a0, &a1], [&b0, &b1], false).await;
    assert_eq!(a.redis().stats().malformed, 0);
    assert_eq!(b.redis().stats().malformed, 0);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polysio_and_npm_nodes() {
    let redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = Node::npm_with(&redis.url(), "sharded");
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    scenarios([&a0, &a1], [&b0, &b1], false).await;
    assert_eq!(a.redis().stats().malformed, 0);
    a.close().await;
    b.close().await;
}

/// Both other subscription modes between polysio nodes: "static" (two channels a namespace)
/// and "dynamic-private" (a channel for every room, socket ids included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_and_dynamic_private_modes() {
    for mode in [SubscriptionMode::Static, SubscriptionMode::DynamicPrivate] {
        let redis = RedisServer::start();
        let config = RedisConfig {
            subscription_mode: mode,
            ..RedisConfig::sharded(redis.url())
        };
        assert_eq!(config.format, RedisFormat::Sharded);
        let a = Node::rust_config(config.clone()).await;
        let b = Node::rust_config(config).await;
        let [a0, a1, b0, b1] = clients(&a, &b).await;
        scenarios([&a0, &a1], [&b0, &b1], false).await;
        // A socket's own room, from the other node.
        a1.call("emit-to", json!([b1.id(), "direct", format!("{mode:?}")]))
            .await;
        b1.expect("direct", &format!("{mode:?}")).await;
        a.close().await;
        b.close().await;
    }
}

/// The classic and the sharded formats do not hear each other (pub/sub and sharded pub/sub are
/// separate in Redis): a cluster must use one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_are_separate() {
    let redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = Node::rust(&redis.url()).await;
    let a0 = Client::connect(&a, "a0").await;
    let b0 = Client::connect(&b, "b0").await;
    assert_eq!(a0.call("server-count", json!([])).await, json!([1]));
    assert_eq!(b0.call("server-count", json!([])).await, json!([1]));
    a0.call("emit-to", json!([null, "hello", "cross"])).await;
    settle().await;
    assert!(!b0.got("hello", "cross"));
    a.close().await;
    b.close().await;
}

/// Messages a polysio node cannot use, on its sharded channels, are logged, counted and
/// skipped; the cluster goes on. (Not tried on an npm node: several of these crash Node's
/// sharded adapter, REDIS-ADAPTER.md section 7.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_skipped() {
    let redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = sharded(&redis.url()).await;
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    let own = format!("socket.io#/#{}#", a.redis().uid());
    let bad: Vec<(&str, &[u8])> = vec![
        ("socket.io#/#", &[0xc1]),
        ("socket.io#/#", b"{not json"),
        ("socket.io#/#", b"[1,2]"),
        (
            "socket.io#/#",
            b"{\"uid\":\"x\",\"nsp\":\"/\",\"type\":3,\"data\":{\"opts\":3}}",
        ),
        (
            "socket.io#/#",
            b"{\"uid\":\"x\",\"nsp\":\"/\",\"type\":4,\"data\":{\"opts\":{\"rooms\":[]},\"rooms\":5}}",
        ),
        (
            "socket.io#/#",
            b"{\"uid\":\"x\",\"nsp\":\"/\",\"type\":7,\"data\":{}}",
        ),
        (
            "socket.io#/#",
            b"{\"uid\":\"x\",\"nsp\":\"/\",\"type\":9,\"data\":{\"packet\":[]}}",
        ),
        (&own, &[0x93, 0xa1]),
    ];
    for (channel, payload) in &bad {
        redis.spublish(channel, payload);
    }
    a0.call("emit-to", json!([null, "hello", "after"])).await;
    b1.expect("hello", "after").await;
    b0.call("emit-to", json!([null, "hello", "after-b"])).await;
    a1.expect("hello", "after-b").await;
    let mut ids: Vec<String> = [&a0, &a1, &b0, &b1].iter().map(|c| c.id()).collect();
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    let m = a.redis().stats().malformed;
    assert!(m >= 8, "malformed counted: {m}");
    a.close().await;
    b.close().await;
}

/// Redis stops and comes back: the polysio node serves its own clients meanwhile, then
/// subscribes again (its room channels too) and the cluster with an npm node works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart() {
    let mut redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = Node::npm_with(&redis.url(), "sharded");
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    a0.call("join", json!(["kept"])).await;
    settle().await;
    redis.stop();
    a0.call("emit-to", json!([null, "hello", "during"])).await;
    a1.expect("hello", "during").await;
    let t = Instant::now();
    let r = a0.call("fetch-sockets", json!([null])).await;
    assert!(r[0]["error"].is_string(), "{r}");
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.spawn();
    a.redis().ready(WAIT).await.unwrap();
    until_delivered(&b0, &a1, "b-to-a").await;
    until_delivered(&a1, &b1, "a-to-b").await;
    // The room's channel was subscribed again: npm publishes `io.to("kept")` there.
    b1.call("emit-to", json!(["kept", "in-kept", "k1"])).await;
    a0.expect("in-kept", "k1").await;
    assert_eq!(b0.call("server-count", json!([])).await, json!([2]));
    a.close().await;
    b.close().await;
}

/// A polysio server that closes leaves the cluster at once (SUNSUBSCRIBE: SHARDNUMSUB stops
/// counting it), for the npm node too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_server_leaves_the_cluster() {
    let redis = RedisServer::start();
    let a = sharded(&redis.url()).await;
    let b = sharded(&redis.url()).await;
    let c = Node::npm_with(&redis.url(), "sharded");
    let a0 = Client::connect(&a, "a0").await;
    let c0 = Client::connect(&c, "c0").await;
    let b0 = Client::connect(&b, "b0").await;
    b0.call("join", json!(["only-on-b"])).await;
    assert_eq!(a0.call("server-count", json!([])).await, json!([3]));
    b.close().await;
    drop(b0);
    let deadline = Instant::now() + WAIT;
    while c0.call("server-count", json!([])).await != json!([2]) {
        assert!(
            Instant::now() < deadline,
            "the closed server is still counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ids = vec![a0.id(), c0.id()];
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(c0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(
        c0.call("server-side-emit-with-ack", json!([])).await,
        json!([["pong"]])
    );
    assert_eq!(
        a0.call("server-side-emit-with-ack", json!([])).await,
        json!([["pong"]])
    );
    a.close().await;
    c.close().await;
}
