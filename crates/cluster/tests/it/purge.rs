//! Purge fan-out: a purge published by one node reaches the others; a node that was away or
//! lost its subscription catches up from the log, and one that cannot know what it missed is
//! told to clear everything.

use std::time::Duration;

use imgforge_cluster::{
    Coordinator, GenerationTable, PurgeCursor, PurgeEvent, PurgeListener, PurgeNotice, PurgeRecord,
};

use crate::harness::{RedisCluster, RedisServer, coordinator, on_cluster, standalone};

const WAIT: Duration = Duration::from_secs(5);

async fn next(l: &mut PurgeListener) -> PurgeNotice {
    tokio::time::timeout(WAIT, l.recv())
        .await
        .expect("a purge notice in time")
        .expect("listener running")
}

/// The next notice, which must be a purge.
async fn next_purge(l: &mut PurgeListener) -> PurgeRecord {
    match next(l).await {
        PurgeNotice::Purge { record, .. } => record,
        other => panic!("expected a purge, got {other:?}"),
    }
}

/// The first notice of a listener, which is always a resync.
async fn resync(l: &mut PurgeListener) -> (bool, GenerationTable, PurgeCursor) {
    let n = next(l).await;
    let mut table = GenerationTable::default();
    let clear = table.apply(&n);
    match n {
        PurgeNotice::Resync { cursor, .. } => (clear, table, cursor),
        other => panic!("expected a resync first, got {other:?}"),
    }
}

fn source(site: &str, source: &str) -> PurgeEvent {
    PurgeEvent::Source {
        site: site.into(),
        source: source.into(),
    }
}

/// A publishes one purge of each kind; B and C receive them in order.
async fn fan_out(a: &Coordinator, b: &Coordinator, c: &Coordinator) {
    let mut lb = b.purge_listener(None);
    let mut lc = c.purge_listener(None);
    for l in [&mut lb, &mut lc] {
        let (clear, _, _) = resync(l).await;
        assert!(clear, "no cursor given: the node must clear what it has");
    }
    let receipt = a
        .publish_purge(&source("shop", "https://cdn.test/a.jpg"))
        .await
        .expect("publish");
    assert_eq!(receipt.generation, Some(1));
    a.publish_purge(&PurgeEvent::Url("http://shop.test/img/x".into()))
        .await
        .expect("publish");
    a.publish_purge(&PurgeEvent::All).await.expect("publish");
    for l in [&mut lb, &mut lc] {
        let r = next_purge(l).await;
        assert_eq!(r.event, source("shop", "https://cdn.test/a.jpg"));
        assert_eq!((r.generation, r.origin.as_str()), (1, "edge-a"));
        assert_eq!(r.seq, receipt.cursor.seq);
        let r = next_purge(l).await;
        assert_eq!(r.event, PurgeEvent::Url("http://shop.test/img/x".into()));
        let r = next_purge(l).await;
        assert_eq!(r.event, PurgeEvent::All);
        assert_eq!(r.seq, receipt.cursor.seq + 2);
    }
    assert_eq!(a.stats().purge_sent, 3);
    assert_eq!(b.stats().purge_received, 3);
    let status = c.status().purge_listener.expect("listener status");
    assert!(status.subscribed);
    assert_eq!(status.cursor.map(|c| c.seq), Some(receipt.cursor.seq + 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_node_reaches_the_others() {
    let redis = RedisServer::start();
    let [a, b, c] = ["edge-a", "edge-b", "edge-c"].map(|n| coordinator(standalone(&redis, n)));
    fan_out(&a, &b, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_node_reaches_the_others_on_a_cluster() {
    let cluster = RedisCluster::start();
    // Different first seeds: the listeners subscribe on different masters than the one that
    // owns the purge keys' slot (classic Pub/Sub is broadcast across the cluster).
    let a = coordinator(on_cluster(&cluster, 0, "edge-a"));
    let b = coordinator(on_cluster(&cluster, 1, "edge-b"));
    let c = coordinator(on_cluster(&cluster, 2, "edge-c"));
    fan_out(&a, &b, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_purges_catches_up_when_it_comes_back() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    let c = coordinator(standalone(&redis, "edge-c"));
    a.publish_purge(&source("shop", "/a.jpg"))
        .await
        .expect("publish");
    let mut lc = c.purge_listener(None);
    let (_, table, cursor) = resync(&mut lc).await;
    assert_eq!(table.get("shop", "/a.jpg"), 1);
    // Node C goes down (its listener and coordinator are gone), keeping its cursor on disk.
    drop(lc);
    drop(c);
    a.publish_purge(&source("shop", "/a.jpg"))
        .await
        .expect("publish");
    a.publish_purge(&source("shop", "/b.jpg"))
        .await
        .expect("publish");
    a.publish_purge(&PurgeEvent::Url("http://shop.test/img/y".into()))
        .await
        .expect("publish");

    // C restarts with its cursor: no clear, the generations, then exactly what it missed.
    let c = coordinator(standalone(&redis, "edge-c"));
    let mut lc = c.purge_listener(Some(cursor.clone()));
    let (clear, mut table, at) = resync(&mut lc).await;
    assert!(
        !clear,
        "the log reaches back to the cursor: nothing to clear"
    );
    assert_eq!(at, cursor);
    assert_eq!(
        table.get("shop", "/a.jpg"),
        2,
        "generations come with the resync"
    );
    let missed = [
        next_purge(&mut lc).await,
        next_purge(&mut lc).await,
        next_purge(&mut lc).await,
    ];
    assert_eq!(
        missed.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [cursor.seq + 1, cursor.seq + 2, cursor.seq + 3]
    );
    assert_eq!(
        missed[2].event,
        PurgeEvent::Url("http://shop.test/img/y".into())
    );
    for r in &missed {
        table.apply(&PurgeNotice::Purge {
            record: r.clone(),
            cursor: cursor.clone(),
        });
    }
    assert_eq!(table.get("shop", "/b.jpg"), 1);
    assert!(lc.try_recv().is_none());

    // A node created after the purges without a cursor sees the bumped generations (and
    // clears, since it cannot know which URLs were purged).
    let d = coordinator(standalone(&redis, "edge-d"));
    let mut ld = d.purge_listener(None);
    let (clear, table, _) = resync(&mut ld).await;
    assert!(clear);
    assert_eq!(table.get("shop", "/a.jpg"), 2);
    assert_eq!(table.get("shop", "/b.jpg"), 1);
    assert_eq!(
        d.source_generation("shop", "/a.jpg").await.expect("read"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_is_made_again_and_nothing_is_missed() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    // No poll during the test: only the re-subscription can bring the purge.
    let mut settings = standalone(&redis, "edge-b");
    settings.purge_poll = Duration::from_secs(60);
    let b = coordinator(settings);
    let mut lb = b.purge_listener(None);
    resync(&mut lb).await;
    // Redis drops every subscriber connection; a purge happens before B is back.
    redis.run(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    a.publish_purge(&source("s", "/x")).await.expect("publish");
    // B re-subscribes, resyncs (no clear: its cursor is still in the log), replays.
    let (clear, _, _) = resync(&mut lb).await;
    assert!(!clear);
    let r = next_purge(&mut lb).await;
    assert_eq!((r.event, r.generation), (source("s", "/x"), 1));
    assert!(b.stats().purge_resyncs >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_log_or_a_redis_that_lost_its_data_means_clear_everything() {
    let redis = RedisServer::start();
    let a = coordinator(standalone(&redis, "edge-a"));
    a.publish_purge(&PurgeEvent::All).await.expect("publish");
    let b = coordinator(standalone(&redis, "edge-b"));
    let cursor = {
        let mut lb = b.purge_listener(None);
        resync(&mut lb).await.2
    };
    // While B is away, more purges than the log keeps (trimmed here by hand).
    a.publish_purge(&PurgeEvent::Url("u1".into()))
        .await
        .expect("publish");
    a.publish_purge(&PurgeEvent::Url("u2".into()))
        .await
        .expect("publish");
    redis.run(&["XTRIM", "{imgforge:purge}:log", "MAXLEN", "1"]);
    let mut lb = b.purge_listener(Some(cursor.clone()));
    let (clear, _, at) = resync(&mut lb).await;
    assert!(clear, "u1 is no longer in the log: B must clear");
    assert_eq!(at.seq, cursor.seq + 2);

    // Redis loses everything (restart without persistence, FLUSHALL): a new history.
    redis.run(&["FLUSHALL"]);
    a.publish_purge(&PurgeEvent::Url("u3".into()))
        .await
        .expect("publish");
    let (clear, _, fresh) = resync(&mut lb).await;
    assert!(clear, "a new history: B cannot know what it missed");
    assert_ne!(fresh.history, at.history);
}
