//! Real Redis processes for the tests: a standalone `redis-server` or a three-master Cluster,
//! each on free loopback ports with its own temporary directory, no persistence, stopped by PID
//! when dropped.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use imgforge_cluster::{ClusterSettings, Coordinator, Endpoint};

/// A loopback port that was free a moment ago and that this process never handed out before
/// (the kernel may give a just-released port back at once).
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind an ephemeral loopback port");
        if given.lock().expect("port set").insert(port) {
            return port;
        }
    }
}

fn redis_server_binary() -> &'static str {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "redis-server is not installed: run scripts/setup.sh (apt-get install redis-server redis-tools)"
        );
    });
    "redis-server"
}

/// One `redis-server` process.
pub struct RedisServer {
    pub port: u16,
    cluster_port: Option<u16>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A standalone server, ready to answer.
    pub fn start() -> Self {
        Self::spawn(free_port(), None)
    }

    /// A standalone server on a given port (from [`free_port`]).
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, None)
    }

    fn spawn(port: u16, cluster_port: Option<u16>) -> Self {
        let mut s = Self {
            port,
            cluster_port,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new(redis_server_binary());
        cmd.args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        if let Some(bus) = self.cluster_port {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.path().join("nodes.conf"))
                .args(["--cluster-port", &bus.to_string()])
                .args(["--cluster-node-timeout", "5000"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.admin_conn() {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
                if pong.is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not come up; log: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log file, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A plain synchronous connection for test set-up and inspection.
    pub fn admin_conn(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// Kills the process (SIGKILL to its PID) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::kill`]); it comes back
    /// empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The number of calls Redis counted for one command (`INFO commandstats`).
    pub fn command_calls(&self, command: &str) -> u64 {
        let mut c = self.admin_conn().expect("admin connection");
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut c)
            .expect("INFO");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Runs a command from a separate connection and thread (e.g. `DEBUG SLEEP 1`), returning at
    /// once.
    pub fn run_in_background(&self, args: &[&str]) -> std::thread::JoinHandle<()> {
        let mut conn = self.admin_conn().expect("admin connection");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let mut cmd = redis::cmd(&args[0]);
            for a in &args[1..] {
                cmd.arg(a);
            }
            let _: redis::RedisResult<redis::Value> = cmd.query(&mut conn);
        })
    }

    /// Runs one command on a fresh connection.
    pub fn run(&self, args: &[&str]) -> redis::Value {
        let mut conn = self.admin_conn().expect("admin connection");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn).expect("command")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters without replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::spawn(free_port(), Some(free_port())))
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(n.addr());
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create (install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` and knows all three masters.
    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self.nodes.iter().all(|n| {
                n.admin_conn().is_ok_and(|mut c| {
                    let info: String = redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query(&mut c)
                        .unwrap_or_default();
                    info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
                })
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cluster did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The seed list, starting at node `first`.
    pub fn seeds(&self, first: usize) -> Vec<String> {
        (0..self.nodes.len())
            .map(|i| self.nodes[(first + i) % self.nodes.len()].addr())
            .collect()
    }

    /// Keys stored on each node.
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                let mut c = n.admin_conn().expect("admin connection");
                redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE")
            })
            .collect()
    }
}

/// Settings for a node `name` on a standalone server.
pub fn standalone(server: &RedisServer, name: &str) -> ClusterSettings {
    ClusterSettings::new(Endpoint::Standalone(server.url()), name)
}

/// Settings for a node `name` on the cluster, seeds starting at node `first`.
pub fn on_cluster(cluster: &RedisCluster, first: usize, name: &str) -> ClusterSettings {
    ClusterSettings::new(Endpoint::Cluster(cluster.seeds(first)), name)
}

/// A coordinator for `settings`, with a request budget of 250 ms instead of 20: a loaded test
/// machine keeps that one, and the tests built on this helper are about what Redis decides.
/// The budget itself is tested in `failures`, with the default.
pub fn coordinator(mut settings: ClusterSettings) -> Coordinator {
    settings.timeout = Duration::from_millis(250);
    Coordinator::new(settings).expect("valid settings")
}

/// Retries `check` every 20 ms until it holds or `within` has passed.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
