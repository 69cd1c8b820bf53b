//! The deployment files ship configuration: keep it valid. The Kubernetes ConfigMap's config and
//! the `IMGFORGE_*` variables set by the Dockerfile and the systemd unit must pass `--check`.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check(config: &Path, env: &[(String, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgforge"))
        .arg("--check")
        .arg("-c")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run imgforge --check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The TOML embedded in the ConfigMap (`imgforge.toml: |`, indented by four spaces).
fn configmap_toml(yaml: &str) -> String {
    let start = yaml
        .find("imgforge.toml: |\n")
        .expect("ConfigMap key imgforge.toml")
        + "imgforge.toml: |\n".len();
    yaml[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.get(4..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kubernetes_configmap_config_is_valid() {
    let yaml = repo("deploy/kubernetes/imgforge.yaml");
    let toml = configmap_toml(&yaml);
    assert!(toml.contains("[[site.route]]"), "extracted:\n{toml}");

    // The secrets the Deployment mounts, and paths that exist on a developer machine; the
    // cluster-internal origin name does not resolve here, so point it at loopback.
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("mkdir");
    std::fs::write(secrets.join("key"), "aa".repeat(32)).expect("key");
    std::fs::write(secrets.join("salt"), "bb".repeat(32)).expect("salt");
    std::fs::write(secrets.join("admin_token"), "t".repeat(40)).expect("token");
    let toml = toml
        .replace("/etc/imgforge/secrets", &secrets.display().to_string())
        .replace(
            "/var/cache/imgforge",
            &dir.path().join("cache").display().to_string(),
        )
        .replace("shop-origin.default.svc.cluster.local:80", "127.0.0.1:80");
    let path = dir.path().join("imgforge.toml");
    std::fs::write(&path, &toml).expect("write");
    let (ok, out) = check(&path, &[]);
    assert!(ok, "ConfigMap config refused:\n{out}\n---\n{toml}");

    // The probes and ports the manifest names are the ones the config serves.
    for needle in [
        "path: /health, port: admin",
        "path: /readyz, port: admin",
        "containerPort: 9090",
        "containerPort: 8080",
    ] {
        assert!(yaml.contains(needle), "manifest lacks {needle}");
    }
    assert!(toml.contains("admin_listen = \"0.0.0.0:9090\""));
    assert!(toml.contains("listen = [\"0.0.0.0:8080\"]"));
}

/// `KEY=VALUE` pairs of `IMGFORGE_*` variables in a Dockerfile `ENV` block or systemd
/// `Environment=` lines.
fn imgforge_vars(text: &str) -> Vec<(String, String)> {
    text.split(|c: char| c.is_whitespace() || c == '\\')
        .filter_map(|w| w.strip_prefix("Environment=").or(Some(w)))
        .filter(|w| w.starts_with("IMGFORGE_"))
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

#[test]
fn dockerfile_and_systemd_overrides_are_valid() {
    let default_conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/imgforge.toml");
    for file in ["Dockerfile", "deploy/imgforge.service"] {
        let vars = imgforge_vars(&repo(file));
        assert!(!vars.is_empty(), "{file}: no IMGFORGE_* variables found");
        let (ok, out) = check(&default_conf, &vars);
        assert!(ok, "{file}: {vars:?} refused:\n{out}");
    }
    // Unknown IMGFORGE_* names are ignored at run time (the seeds use IMGFORGE_SECRET for other
    // things), so check the names against the list the binary reads.
    for file in ["Dockerfile", "deploy/imgforge.service"] {
        for (k, _) in imgforge_vars(&repo(file)) {
            assert!(
                imgforge::config::ENV_VARIABLES.contains(&k.as_str()),
                "{file}: {k} is not a variable imgforge reads"
            );
        }
    }
}
