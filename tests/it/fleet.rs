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
