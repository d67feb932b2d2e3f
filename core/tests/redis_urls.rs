//! The Redis URLs a user writes: a password (`redis://:pw@`), an ACL user
//! (`redis://user:pw@`), a database number (`/3`), a unix socket
//! (`redis+unix:///path?db=N&pass=pw`), against a real `redis-server` that requires them; an
//! npm socket.io node (ioredis) joins with the same URL. A wrong password fails in bounded
//! time with an error that says so.
#![cfg(feature = "redis")]

#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::time::{Duration, Instant};

use polysio::adapter::redis::{Emitter, EmitterConfig, RedisAdapter, RedisConfig};
use polysio::server::{Server, ServerConfig};
use redis_cluster::*;

/// A redis-server asking for password `pw` (user `default`), with user `alice` (password
/// `alice-pw`) and a unix socket in a fresh directory.
fn secured() -> (RedisServer, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let sock = dir.path.join("redis.sock");
    let sock = sock.to_str().unwrap().to_owned();
    let redis = RedisServer::start_with(&[
        "--requirepass",
        "pw",
        "--user",
        "alice",
        "on",
        ">alice-pw",
        "~*",
        "&*",
        "+@all",
        "--unixsocket",
        &sock,
        "--unixsocketperm",
        "700",
    ]);
    (redis, dir)
}

mod tempdir {
    /// A directory of the test's own, removed on drop.
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Dir {
            let path = std::env::temp_dir().join(format!(
                "polysio-redis-urls-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `io.of("/").server_count()` of a polysio node: the subscribers of the cluster, counted by
/// Redis (PUBSUB NUMSUB through the publishing connection).
async fn server_count(n: &Node) -> usize {
    let Node::Rust { io, .. } = n else {
        unreachable!("a polysio node")
    };
    tokio::time::timeout(WAIT, io.of("/").server_count())
        .await
        .expect("server_count in time")
        .expect("server_count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_user_database_and_unix_socket() {
    let (redis, dir) = secured();
    let p = redis.port;
    let sock = dir.path.join("redis.sock");
    let sock = sock.to_str().unwrap();
    // A polysio node over TCP with a password and a database, one over the unix socket as an
    // ACL user: each subscribed (ready) and publishing (server_count) with its credentials.
    let a = Node::rust(&format!("redis://:pw@127.0.0.1:{p}/3")).await;
    let b = Node::rust(&format!(
        "redis+unix://{sock}?db=5&user=alice&pass=alice-pw"
    ))
    .await;
    assert_eq!(server_count(&a).await, 2);
    assert_eq!(server_count(&b).await, 2);
    // An npm node (ioredis) with the user's URL joins them.
    // (It prints `listening` before its subscriber is in: counted once it is.)
    let c = Node::npm(&format!("redis://alice:alice-pw@127.0.0.1:{p}/3"));
    for n in [&a, &b] {
        let deadline = Instant::now() + WAIT;
        while server_count(n).await != 3 {
            assert!(
                Instant::now() < deadline,
                "the npm node was not counted in {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // An emitter with the unix socket URL writes with its credentials.
    let emitter = Emitter::new(EmitterConfig::new(format!(
        "redis+unix://{sock}?user=alice&pass=alice-pw"
    )))
    .unwrap();
    emitter.emit("hello", vec!["from-emitter".into()]).unwrap();
    emitter.flush().await.unwrap();
    assert_eq!(emitter.stats().published, 1);
    for n in [&a, &b] {
        assert_eq!(n.redis().stats().malformed, 0);
    }
    a.close().await;
    b.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_in_bounded_time() {
    let (redis, _dir) = secured();
    for url in [
        format!("redis://:wrong@127.0.0.1:{}/", redis.port),
        format!("redis://127.0.0.1:{}/", redis.port),
    ] {
        let adapter = RedisAdapter::new(RedisConfig::new(url.as_str())).unwrap();
        // A server with namespace `/`: something for the adapter to subscribe.
        let io = Server::new(ServerConfig {
            adapter: Some(adapter.factory()),
            ..Default::default()
        });
        io.of("/");
        let t0 = Instant::now();
        let err = adapter
            .ready(Duration::from_secs(3))
            .await
            .expect_err("ready with a wrong password");
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{url}: {:?}",
            t0.elapsed()
        );
        eprintln!("# {url}: {err} after {:?}", t0.elapsed());
        io.close().await;

        let emitter = Emitter::new(EmitterConfig::new(url.as_str())).unwrap();
        emitter.emit("hello", vec![]).unwrap();
        let t0 = Instant::now();
        let err = emitter
            .flush()
            .await
            .expect_err("flush with a wrong password");
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{url}: {:?}",
            t0.elapsed()
        );
        let msg = err.to_string().to_lowercase();
        assert!(
            msg.contains("auth") || msg.contains("password") || msg.contains("pass"),
            "{url}: the error should say the password was refused: {err}"
        );
        assert_eq!(emitter.stats().dropped, 1);
    }
}
