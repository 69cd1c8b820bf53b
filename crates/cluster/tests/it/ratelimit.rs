//! Shared rate limits: several coordinators (nodes) on one Redis admit together what one
//! bucket allows, on standalone Redis and on a Cluster; the deny cache spares Redis.

use std::time::{Duration, Instant};

use imgforge_cluster::{ClusterSettings, Coordinator, Quota, Verdict};

use crate::harness::{RedisCluster, RedisServer, coordinator, eventually, on_cluster, standalone};

const QUOTA: Quota = Quota {
    per_second: 40.0,
    burst: 8,
};

struct Tally {
    allowed: Vec<u64>,
    requests: u64,
    fallbacks: u64,
    elapsed: Duration,
}

/// Nodes for the admission tests, connected before the clock starts.
async fn nodes(settings: impl Iterator<Item = ClusterSettings>) -> Vec<Coordinator> {
    let mut out = Vec::new();
    for s in settings {
        let node = coordinator(s);
        let ready = eventually(Duration::from_secs(10), async || {
            !node.rate_limit("warm-up", "-", QUOTA).await.is_fallback()
        })
        .await;
        assert!(ready, "node never connected: {:?}", node.status());
        out.push(node);
    }
    out
}

/// Every node sends requests for every client, one round every 2 ms, for `run`.
async fn hammer(nodes: &[Coordinator], clients: &[String], run: Duration) -> Tally {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for node in nodes {
        let node = node.clone();
        let clients = clients.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut allowed = vec![0u64; clients.len()];
            let mut fallbacks = 0;
            let mut requests = 0;
            while start.elapsed() < run {
                for (i, client) in clients.iter().enumerate() {
                    requests += 1;
                    match node.rate_limit("/img", client, QUOTA).await {
                        Verdict::Shared(d) if d.allowed => allowed[i] += 1,
                        Verdict::Shared(_) => {}
                        Verdict::Fallback(_) => fallbacks += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (allowed, requests, fallbacks)
        }));
    }
    let mut tally = Tally {
        allowed: vec![0; clients.len()],
        requests: 0,
        fallbacks: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (allowed, requests, fallbacks) = t.await.expect("node task");
        tally.requests += requests;
        for (sum, a) in tally.allowed.iter_mut().zip(allowed) {
            *sum += a;
        }
        tally.fallbacks += fallbacks;
    }
    tally.elapsed = start.elapsed();
    tally
}

/// GCRA admits at most burst + rate × elapsed (+1 for where the edges of the run fall).
fn assert_within_quota(t: &Tally) {
    // Redis is up and the budget generous: a loaded machine may still stall a call now and
    // then (a fallback admits nothing here, so it cannot hide an excess).
    assert!(
        t.fallbacks * 50 <= t.requests,
        "{} of {} requests fell back",
        t.fallbacks,
        t.requests
    );
    let ceiling = f64::from(QUOTA.burst) + QUOTA.per_second * t.elapsed.as_secs_f64() + 1.0;
    // Requests arrive every ~2 ms from each node: the fleet uses most of what it may.
    let floor = 0.7 * QUOTA.per_second * t.elapsed.as_secs_f64();
    for (i, &a) in t.allowed.iter().enumerate() {
        assert!(
            (a as f64) <= ceiling,
            "client {i}: {a} admitted in {:?}, at most {ceiling:.1} allowed",
            t.elapsed
        );
        assert!(
            (a as f64) >= floor,
            "client {i}: only {a} admitted in {:?} (expected at least {floor:.1})",
            t.elapsed
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_bucket_on_standalone_redis() {
    let redis = RedisServer::start();
    let nodes = nodes((1..=3).map(|i| standalone(&redis, &format!("edge-{i}")))).await;
    let tally = hammer(
        &nodes,
        &["198.51.100.7".to_string()],
        Duration::from_millis(1500),
    )
    .await;
    assert_within_quota(&tally);
    // Each node alone would have let through the full quota: the limit is the fleet's.
    let per_node_local = f64::from(QUOTA.burst) + QUOTA.per_second * tally.elapsed.as_secs_f64();
    assert!((tally.allowed[0] as f64) < 1.5 * per_node_local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_buckets_on_a_cluster() {
    let cluster = RedisCluster::start();
    // Each node knows the cluster through a different first seed.
    let nodes = nodes((0..3).map(|i| on_cluster(&cluster, i, &format!("edge-{i}")))).await;
    let clients: Vec<String> = (1..=6).map(|i| format!("203.0.113.{i}")).collect();
    let tally = hammer(&nodes, &clients, Duration::from_millis(1500)).await;
    assert_within_quota(&tally);
    // The buckets are spread over the masters (hash tag = the whole bucket identity).
    let counts = cluster.key_counts();
    assert!(
        counts.iter().filter(|&&n| n > 0).count() >= 2,
        "buckets on one master only: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_costs_no_redis_call_until_its_retry_time() {
    let redis = RedisServer::start();
    let node = coordinator(standalone(&redis, "edge-1"));
    let slow = Quota {
        per_second: 2.0,
        burst: 1,
    };
    let first = node.rate_limit("/img", "192.0.2.1", slow).await;
    assert!(
        matches!(first, Verdict::Shared(d) if d.allowed),
        "{first:?}"
    );
    let Verdict::Shared(refused) = node.rate_limit("/img", "192.0.2.1", slow).await else {
        panic!("Redis is up");
    };
    assert!(!refused.allowed);
    assert!(
        refused.retry_after > Duration::from_millis(400),
        "{refused:?}"
    );
    let scripts = |r: &RedisServer| r.command_calls("evalsha") + r.command_calls("eval");
    let before = scripts(&redis);
    for _ in 0..200 {
        let v = node.rate_limit("/img", "192.0.2.1", slow).await;
        assert!(matches!(v, Verdict::Shared(d) if !d.allowed && d.retry_after > Duration::ZERO));
    }
    assert_eq!(
        scripts(&redis),
        before,
        "refusals from the deny cache call Redis"
    );
    assert_eq!(node.stats().deny_cache_hits, 200);
    // Another client is unaffected, and after the retry time Redis decides again.
    assert!(matches!(
        node.rate_limit("/img", "192.0.2.2", slow).await,
        Verdict::Shared(d) if d.allowed
    ));
    tokio::time::sleep(refused.retry_after + Duration::from_millis(20)).await;
    assert!(matches!(
        node.rate_limit("/img", "192.0.2.1", slow).await,
        Verdict::Shared(d) if d.allowed
    ));
    assert_eq!(scripts(&redis), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_carry_the_headers_fields_and_survive_a_script_flush() {
    let redis = RedisServer::start();
    let node = coordinator(standalone(&redis, "edge-1"));
    let q = Quota {
        per_second: 10.0,
        burst: 3,
    };
    let mut remaining = Vec::new();
    for _ in 0..3 {
        match node.rate_limit("/", "c", q).await {
            Verdict::Shared(d) => {
                assert!(d.allowed);
                assert_eq!(d.limit, 3);
                remaining.push(d.remaining);
            }
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(remaining, [2, 1, 0]);
    // The key lives as long as the bucket needs to fill up again (≈ 3 intervals).
    let mut c = redis.admin_conn().expect("admin");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("imgforge:rl:{/ c}")
        .query(&mut c)
        .expect("PTTL");
    assert!((200..=300).contains(&ttl), "PTTL {ttl}");
    // The scripts cache is emptied (as after a Redis restart or failover): EVALSHA falls back.
    redis.run(&["SCRIPT", "FLUSH"]);
    let v = node.rate_limit("/", "other", q).await;
    assert!(matches!(v, Verdict::Shared(d) if d.allowed), "{v:?}");
    assert!(redis.command_calls("eval") >= 1, "the fallback to EVAL ran");
}
