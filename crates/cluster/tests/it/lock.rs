//! Fill locks across nodes: one winner among concurrent lockers, release by the owner only,
//! expiry when the owner dies, bounded waits for the losers.

use std::time::{Duration, Instant};

use imgforge_cluster::{Coordinator, LockAttempt, WaitOutcome};

use crate::harness::{RedisCluster, RedisServer, coordinator, on_cluster, standalone};

const TTL: Duration = Duration::from_secs(10);

/// Eight requests on four nodes miss the same variant at once: exactly one fills it; the others
/// wait and are released when it is done.
async fn one_winner(nodes: &[Coordinator]) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let node = nodes[i % nodes.len()].clone();
        tasks.push(tokio::spawn(async move {
            match node.try_lock("variant-42", TTL).await.expect("redis up") {
                LockAttempt::Acquired(lock) => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    assert!(lock.release().await.expect("release"));
                    (true, None)
                }
                LockAttempt::Busy => {
                    let t = Instant::now();
                    let outcome = node
                        .wait_unlocked("variant-42", Duration::from_secs(3))
                        .await;
                    (false, Some((outcome, t.elapsed())))
                }
            }
        }));
    }
    let mut winners = 0;
    for t in tasks {
        let (won, waited) = t.await.expect("task");
        winners += u32::from(won);
        if let Some((outcome, took)) = waited {
            assert_eq!(outcome, WaitOutcome::Unlocked);
            assert!(took < Duration::from_secs(1), "waited {took:?}");
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_many_concurrent_lockers_wins() {
    let redis = RedisServer::start();
    let nodes: Vec<Coordinator> = (0..4)
        .map(|i| coordinator(standalone(&redis, &format!("edge-{i}"))))
        .collect();
    one_winner(&nodes).await;
    assert_eq!(
        nodes.iter().map(|n| n.stats().locks_acquired).sum::<u64>(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_many_concurrent_lockers_wins_on_a_cluster() {
    let cluster = RedisCluster::start();
    let nodes: Vec<Coordinator> = (0..3)
        .map(|i| coordinator(on_cluster(&cluster, i, &format!("edge-{i}"))))
        .collect();
    one_winner(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_releases() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    let b = coordinator(standalone(&redis, "edge-b"));
    let LockAttempt::Acquired(lock) = a.try_lock("k", TTL).await.expect("up") else {
        panic!("free lock not acquired");
    };
    assert!(lock.token().starts_with("edge-a/"));
    assert!(!b.release_lock("k", "edge-b/guess").await.expect("up"));
    assert!(matches!(b.try_lock("k", TTL).await, Ok(LockAttempt::Busy)));
    let token = lock.token().to_string();
    assert!(lock.release().await.expect("up"));
    assert!(
        !a.release_lock("k", &token).await.expect("up"),
        "released twice"
    );

    // An owner whose lock expired and was taken by another does not release the new one.
    let LockAttempt::Acquired(stale) = a
        .try_lock("k", Duration::from_millis(50))
        .await
        .expect("up")
    else {
        panic!("not acquired");
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let LockAttempt::Acquired(fresh) = b.try_lock("k", TTL).await.expect("up") else {
        panic!("an expired lock is free");
    };
    assert!(!stale.release().await.expect("up"));
    assert_eq!(
        b.wait_unlocked("k", Duration::from_millis(50)).await,
        WaitOutcome::TimedOut,
        "the new owner still holds it"
    );
    assert!(fresh.release().await.expect("up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_expires_when_its_owner_dies() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    let b = coordinator(standalone(&redis, "edge-b"));
    let LockAttempt::Acquired(lock) = a
        .try_lock("k", Duration::from_millis(300))
        .await
        .expect("up")
    else {
        panic!("not acquired");
    };
    // The owner dies: no release ever comes (not even the one a dropped lock would send).
    std::mem::forget(lock);
    drop(a);
    let t = Instant::now();
    assert_eq!(
        b.wait_unlocked("k", Duration::from_secs(3)).await,
        WaitOutcome::Unlocked
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(matches!(
        b.try_lock("k", TTL).await,
        Ok(LockAttempt::Acquired(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lock_is_released_and_waits_are_bounded() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    let b = coordinator(standalone(&redis, "edge-b"));
    let LockAttempt::Acquired(lock) = a.try_lock("k", TTL).await.expect("up") else {
        panic!("not acquired");
    };
    let t = Instant::now();
    assert_eq!(
        b.wait_unlocked("k", Duration::from_millis(120)).await,
        WaitOutcome::TimedOut
    );
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    // A request that errors out drops its lock without releasing: it is released anyway.
    drop(lock);
    assert_eq!(
        b.wait_unlocked("k", Duration::from_secs(2)).await,
        WaitOutcome::Unlocked
    );
}
