//! Redis failing under the coordinator: killed, restarted, stalled, absent at start. Every
//! request-path call returns within its budget, falls back, and the breaker keeps a dead Redis
//! from costing even that; shared limiting resumes by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imgforge_cluster::{
    BreakerSettings, BreakerState, ConnectionState, Coordinator, ErrorKind, FallbackReason,
    Observer, OnError, Op, Quota, Verdict,
};

use crate::harness::{RedisServer, eventually, free_port, standalone};

const Q: Quota = Quota {
    per_second: 1000.0,
    burst: 1000,
};

/// The correctness bound of one call with the default 20 ms budget (generous: a loaded CI
/// machine must not make it flaky; a stalled Redis would take 1000 ms).
const BOUND: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Counting {
    fallbacks: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    timeouts: AtomicU64,
}

impl Observer for Counting {
    fn call(&self, _op: Op, _elapsed: Duration, outcome: Result<(), ErrorKind>) {
        if outcome == Err(ErrorKind::Timeout) {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn fallback(&self, _reason: FallbackReason) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }
    fn breaker(&self, state: BreakerState) {
        match state {
            BreakerState::Open => self.opened.fetch_add(1, Ordering::Relaxed),
            _ => self.closed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn node(redis: &RedisServer, observer: Arc<Counting>) -> Coordinator {
    let mut s = standalone(redis, "edge-1");
    s.breaker = BreakerSettings {
        failures: 3,
        open_for: Duration::from_millis(300),
    };
    Coordinator::with_observer(s, observer).expect("valid settings")
}

/// One decision, timed.
async fn timed(node: &Coordinator, client: &str) -> (Verdict, Duration) {
    let t = Instant::now();
    let v = node.rate_limit("/img", client, Q).await;
    (v, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_falls_back_opens_the_breaker_and_recovers_after_restart() {
    let mut redis = RedisServer::start();
    let seen = Arc::new(Counting::default());
    let node = node(&redis, seen.clone());
    let (v, _) = timed(&node, "a").await;
    assert!(matches!(v, Verdict::Shared(d) if d.allowed), "{v:?}");
    assert_eq!(node.status().connection, ConnectionState::Up);

    redis.kill();
    let mut verdicts = Vec::new();
    for i in 0..20 {
        let (v, took) = timed(&node, &format!("c{i}")).await;
        assert!(took < BOUND, "call {i} took {took:?} with Redis dead");
        verdicts.push(v);
    }
    assert!(verdicts.iter().all(Verdict::is_fallback), "{verdicts:?}");
    // The `local` policy: the caller's own limiter decides.
    let local = imgforge_cluster::Decision {
        allowed: true,
        limit: 1000,
        remaining: 999,
        reset: Duration::ZERO,
        retry_after: Duration::ZERO,
    };
    assert_eq!(verdicts[0].resolve(|| local), local);
    let status = node.status();
    assert_eq!(status.breaker, BreakerState::Open, "{status:?}");
    assert_eq!(status.connection, ConnectionState::Down);
    assert!(status.last_error.is_some());
    let stats = node.stats();
    assert!(stats.fallbacks_breaker_open >= 15, "{stats:?}");
    // The warm-up call, three failures, at most two probes: an open breaker skips Redis.
    assert!(stats.calls <= 1 + 3 + 2, "{stats:?}");
    assert_eq!(seen.fallbacks.load(Ordering::Relaxed), 20);
    assert_eq!(seen.opened.load(Ordering::Relaxed), 1);

    redis.restart();
    let back = eventually(Duration::from_secs(10), async || {
        matches!(timed(&node, "z").await.0, Verdict::Shared(_))
    })
    .await;
    assert!(back, "shared limiting did not resume: {:?}", node.status());
    assert_eq!(node.status().breaker, BreakerState::Closed);
    assert_eq!(node.status().connection, ConnectionState::Up);
    assert!(seen.closed.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_never_holds_a_request_past_the_budget() {
    let redis = RedisServer::start();
    let seen = Arc::new(Counting::default());
    let node = node(&redis, seen.clone());
    assert!(matches!(timed(&node, "warm").await.0, Verdict::Shared(_)));

    for stall in [
        &["DEBUG", "SLEEP", "1"][..],
        &["CLIENT", "PAUSE", "1000"][..],
    ] {
        let stall_started = Instant::now();
        let staller = redis.run_in_background(stall);
        // Let the stall begin before measuring.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut fell_back = 0;
        while stall_started.elapsed() < Duration::from_millis(700) {
            let (v, took) = timed(&node, "stalled").await;
            assert!(took < BOUND, "{stall:?}: a call took {took:?}");
            fell_back += u32::from(v.is_fallback());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(fell_back >= 3, "{stall:?}: only {fell_back} fallbacks");
        staller.join().expect("staller thread");
        let back = eventually(Duration::from_secs(5), async || {
            matches!(timed(&node, "after").await.0, Verdict::Shared(_))
        })
        .await;
        assert!(back, "{stall:?}: no recovery: {:?}", node.status());
    }
    assert!(seen.timeouts.load(Ordering::Relaxed) >= 2);
    assert!(node.stats().fallbacks_timeout >= 2, "{:?}", node.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_absent_at_start_then_up_on_that_port() {
    let port = free_port();
    let settings = imgforge_cluster::ClusterSettings::new(
        imgforge_cluster::Endpoint::Standalone(format!("redis://127.0.0.1:{port}")),
        "edge-1",
    );
    // No server yet: creating a coordinator contacts nothing.
    let node = Coordinator::new(settings).expect("valid");
    assert_eq!(node.status().connection, ConnectionState::Idle);
    for policy in [OnError::Local, OnError::Allow, OnError::Deny] {
        let mut s = node.settings().clone();
        s.on_error = policy;
        let n = Coordinator::new(s).expect("valid");
        let (v, took) = timed(&n, "x").await;
        assert!(took < BOUND, "{took:?}");
        match v {
            Verdict::Fallback(f) => assert_eq!(f.policy, policy),
            v => panic!("{v:?}"),
        }
    }
    let (v, _) = timed(&node, "x").await;
    assert!(v.is_fallback());
    // A server appears on the configured port: the coordinator connects by itself.
    let redis = RedisServer::start_on(port);
    let up = eventually(Duration::from_secs(10), async || {
        matches!(timed(&node, "x").await.0, Verdict::Shared(_))
    })
    .await;
    assert!(up, "never connected: {:?}", node.status());
    drop(redis);
}

/// Pingora builds its services before any runtime runs: a coordinator can be created outside
/// one and used inside one later.
#[test]
fn created_outside_a_runtime_used_inside_one() {
    let redis = RedisServer::start();
    let node = Coordinator::new(standalone(&redis, "edge-1")).expect("valid");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let v = rt.block_on(async {
        // The first call connects (within its budget, or it falls back): allow a few.
        let mut v = node.rate_limit("/", "a", Q).await;
        for _ in 0..50 {
            if !v.is_fallback() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            v = node.rate_limit("/", "a", Q).await;
        }
        v
    });
    assert!(matches!(v, Verdict::Shared(d) if d.allowed), "{v:?}");
}
