//! Fleet mode (`[cluster]`): three real imgforge nodes sharing their rate limits through a real
//! `redis-server` started here on a free loopback port and stopped by PID.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A `redis-server` of this test: no persistence, its own directory, killed on drop.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start_on(port: u16) -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            port,
            child,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn node(origin: &Origin, redis: &str, on_error: &str, id: &str) -> Gateway {
    let routes = "[[site.route]]\nprefix = \"/\"\nrate_limit = { rate = \"1/s\", burst = 5 }\n";
    Gateway::builder()
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .config(&format!(
            "[cluster]\nredis = \"{redis}\"\nnode_id = \"{id}\"\ntimeout = \"100ms\"\non_error = \"{on_error}\"\n{}{routes}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await
}

/// Sends `n` requests of one client, spread round robin over `nodes`; counts the 200s.
async fn spread(nodes: &[&Gateway], n: usize, client: &str) -> usize {
    let mut ok = 0;
    for i in 0..n {
        let r = nodes[i % nodes.len()]
            .request(reqwest::Method::GET, "s.test", "/id")
            .header("X-Forwarded-For", client)
            .send()
            .await
            .expect("send");
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_bucket_and_fall_back_when_redis_dies() {
    let origin = Origin::start("o").await;
    let mut redis = Redis::start_on(free_port());
    let a = node(&origin, &redis.url(), "local", "a").await;
    let b = node(&origin, &redis.url(), "local", "b").await;
    let c = node(&origin, &redis.url(), "local", "c").await;
    let nodes = [&a, &b, &c];

    // One client over three nodes: the fleet admits burst + rate × elapsed, not three bursts.
    let started = Instant::now();
    let admitted = spread(&nodes, 30, "203.0.113.7").await;
    let bound = 5.0 + started.elapsed().as_secs_f64() * 1.0 + 1.0;
    assert!(admitted >= 5, "{admitted}: the burst itself is admitted");
    assert!(
        (admitted as f64) <= bound,
        "{admitted} admitted across three nodes, bound {bound:.1} (three local limiters: 15)"
    );
    let (_, status) = a.admin("/status").await;
    assert!(status.contains("\"cluster\""), "{status}");
    assert!(status.contains("\"connection\": \"up\""), "{status}");

    // Redis gone: requests are still answered, by each node's own limiter (on_error = local),
    // and the fallback counter rises; another client gets a fresh local bucket on each node.
    redis.stop();
    let admitted = spread(&nodes, 30, "203.0.113.8").await;
    assert!(
        (15..=18).contains(&admitted),
        "{admitted}: three local buckets of 5 (+ refill)"
    );
    let mut fallbacks = 0.0;
    for n in nodes {
        fallbacks += n.metric("imgforge_cluster_fallbacks_total", &[]).await;
    }
    assert!(fallbacks >= 1.0, "no fallback counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_deny_refuses_and_allow_admits_without_redis() {
    let origin = Origin::start("o").await;
    // Nothing listens there: every call fails at once (connection refused).
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let deny = node(&origin, &dead, "deny", "d").await;
    let allow = node(&origin, &dead, "allow", "e").await;
    assert_eq!(spread(&[&deny], 3, "198.51.100.1").await, 0);
    assert_eq!(spread(&[&allow], 12, "198.51.100.1").await, 12);
    assert!(
        deny.metric("imgforge_cluster_fallbacks_total", &[]).await >= 1.0,
        "fallbacks counted"
    );
    // Readiness never depends on Redis.
    assert_eq!(deny.admin("/readyz").await.0, 200);
}

/// `X-Cache-Status` of one image request.
async fn cache_status(gw: &Gateway, path: &str) -> String {
    let r = gw.get("s.test", path).await;
    assert_eq!(r.status(), 200);
    r.headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

async fn admin_purge(gw: &Gateway, query: &str) -> (u16, String) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://127.0.0.1:{}/purge?{query}", gw.admin_port))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("purge");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Waits (bounded) until `path` is no longer a hit on `gw`; its first non-hit status.
async fn until_not_hit(gw: &Gateway, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = cache_status(gw, path).await;
        if s != "HIT" || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_node_reaches_the_others_and_a_restarted_one() {
    let origin = Origin::start("o").await;
    let jpeg = imgforge::transform::testkit::encode(
        &imgforge::transform::testkit::quadrant_pixels(120, 80),
        120,
        80,
        3,
        imgforge::transform::Format::Jpeg,
    );
    origin.put("q.jpg", jpeg.to_vec());
    let redis = Redis::start_on(free_port());
    let disk = tempfile::tempdir().expect("tempdir");
    let config = |id: &str, disk: Option<&std::path::Path>| {
        let cache = disk.map_or(String::new(), |d| {
            format!(
                "[cache]\nmemory_size = \"8MiB\"\ndisk_path = \"{}\"\ndisk_size = \"64MiB\"\n",
                d.display()
            )
        });
        format!(
            "[cluster]\nredis = \"{}\"\nnode_id = \"{id}\"\ntimeout = \"200ms\"\n{cache}{}{}",
            redis.url(),
            site("s", &["s.test"], &[origin.addr], ""),
            crate::common::IMAGE_ROUTES_CACHED_ROOT
        )
    };
    let start = |id: &'static str, disk: Option<&std::path::Path>| {
        Gateway::builder()
            .server("admin_token = \"s3cret\"")
            .config(&config(id, disk))
            .start()
    };
    let a = start("a", None).await;
    let b = start("b", None).await;
    let mut c = start("c", Some(disk.path())).await;
    let path = "/img/unsafe/w:40/plain/f/q.jpg";
    for n in [&a, &b, &c] {
        assert_eq!(cache_status(n, path).await, "MISS");
        assert_eq!(cache_status(n, path).await, "HIT");
    }
    // Let C's disk tier finish its write behind the response.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // One URL purged on A: B and C miss next time.
    let url = format!("url=http%3A%2F%2Fs.test{}", path.replace('/', "%2F"));
    let (s, body) = admin_purge(&a, &url).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(cache_status(&a, path).await, "MISS");
    assert_eq!(until_not_hit(&b, path).await, "MISS", "B still hit");
    assert_eq!(until_not_hit(&c, path).await, "MISS", "C still hit");
    assert!(
        b.metric(
            "imgforge_cluster_purges_total",
            &[("direction", "received"), ("kind", "url")]
        )
        .await
            >= 1.0
    );
    assert_eq!(cache_status(&c, path).await, "HIT");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // C is down while its source is purged on B; restarted on the same disk tier, it must not
    // serve the purged variant (it replays what it missed before it reports ready).
    c.signal(15);
    assert!(c.wait_exit(Duration::from_secs(10)).is_some(), "C stopped");
    drop(c);
    let (s, body) = admin_purge(&b, "site=s&source=%2Ff%2Fq.jpg").await;
    assert_eq!(s, 200, "{body}");
    let c = start("c", Some(disk.path())).await;
    assert_eq!(
        cache_status(&c, path).await,
        "MISS",
        "a node restarted after a purge served the purged entry"
    );
    assert_eq!(until_not_hit(&a, path).await, "MISS");
}
