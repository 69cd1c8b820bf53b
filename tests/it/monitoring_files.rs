//! `deploy/grafana/imgforge-dashboard.json` and `deploy/prometheus/imgforge-alerts.yml` parse,
//! have the structure Grafana and Prometheus expect, and name only metrics that a running
//! gateway exports: the dashboard and the alerts cannot drift from the code.

use crate::common::*;

use std::collections::BTreeSet;
use std::path::Path;

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Series Prometheus makes itself (not exported by the gateway).
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// PromQL words that are not metric names (aggregations may be followed by `by (…)` instead of
/// their parenthesis).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Removes every `open … close` span (not nested: strings are removed first).
fn strip_between(s: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inside = false;
    for c in s.chars() {
        match (inside, c) {
            (false, c) if c == open => inside = true,
            (true, c) if c == close => inside = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out
}

/// The metric names a PromQL expression reads. Grafana's `${ns}` (the imgproxy namespace
/// variable) is taken as empty, the gateway's default.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let e = expr.replace("${ns}", "");
    let e = strip_between(&e, '"', '"');
    let e = strip_between(&e, '{', '}');
    let e = strip_between(&e, '[', ']');
    // Tokens: identifiers with what follows them; numbers and durations skipped whole.
    let chars: Vec<char> = e.chars().collect();
    let mut tokens: Vec<(String, char)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let next = chars[i..]
                .iter()
                .copied()
                .find(|c| !c.is_whitespace())
                .unwrap_or(' ');
            tokens.push((chars[start..i].iter().collect(), next));
        } else {
            i += 1;
        }
    }
    // Label lists after by / without / on / ignoring / group_*: `sum by (le, site) (…)`.
    let mut names = BTreeSet::new();
    let mut in_label_list = false;
    for (tok, next) in &tokens {
        let is_clause = [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ]
        .contains(&tok.as_str());
        if is_clause {
            in_label_list = *next == '(';
            continue;
        }
        if in_label_list {
            // The list ends at its `)`: the last label is followed by it.
            if *next == ')' {
                in_label_list = false;
            }
            continue;
        }
        if *next == '(' || KEYWORDS.contains(&tok.as_str()) {
            continue; // a function or an aggregation
        }
        names.insert(tok.clone());
    }
    names
}

#[test]
fn promql_names_are_extracted() {
    let got = metric_names(
        r#"histogram_quantile(0.99, sum by (le, site) (rate(imgforge_request_duration_seconds_bucket{site=~"$site"}[$__rate_interval])))"#,
    );
    assert_eq!(
        got,
        BTreeSet::from(["imgforge_request_duration_seconds_bucket".to_string()])
    );
    let got = metric_names(
        "sum by (site) (rate(a_total{status=\"HIT\"}[30m] offset 1d)) < on (site) b - 0.25 and on (site) sum(rate(c[5m])) > 1",
    );
    assert_eq!(
        got,
        BTreeSet::from(["a_total".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        metric_names("${ns}images_in_progress / ${ns}workers >= 1"),
        BTreeSet::from(["images_in_progress".into(), "workers".into()])
    );
}

/// Every PromQL expression of the dashboard, after checking its structure.
fn dashboard_exprs() -> Vec<(String, String)> {
    let d: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/imgforge-dashboard.json")).expect("JSON");
    assert!(
        d["title"].is_string() && d["uid"].is_string(),
        "title and uid"
    );
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    let vars: BTreeSet<&str> = d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        vars.is_superset(&BTreeSet::from(["ds", "site", "ns"])),
        "{vars:?}"
    );
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("panel title").to_string();
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
        assert!(
            x + w <= 24 && g["h"].is_u64() && g["y"].is_u64(),
            "{title}: gridPos"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${ds}", "{title}: datasource");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            exprs.push((title.clone(), expr.to_string()));
        }
    }
    exprs
}

/// Every alert expression, after checking the rule file's structure.
fn alert_exprs() -> Vec<(String, String)> {
    let y: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/prometheus/imgforge-alerts.yml")).expect("YAML");
    let groups = y["groups"].as_sequence().expect("groups");
    assert!(!groups.is_empty());
    let mut names = BTreeSet::new();
    let mut exprs = Vec::new();
    for g in groups {
        assert!(g["name"].is_string(), "group name");
        for r in g["rules"].as_sequence().expect("rules") {
            let alert = r["alert"].as_str().expect("alert name").to_string();
            assert!(names.insert(alert.clone()), "duplicate alert {alert}");
            let severity = r["labels"]["severity"].as_str().expect("severity");
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{alert}: {severity}"
            );
            assert!(r["annotations"]["summary"].is_string(), "{alert}: summary");
            if let Some(f) = r.get("for") {
                let f = f.as_str().expect("for is a duration string");
                assert!(
                    f.ends_with(['s', 'm', 'h']) && f[..f.len() - 1].parse::<u32>().is_ok(),
                    "{alert}: for: {f}"
                );
            }
            let expr = r["expr"].as_str().expect("expr");
            exprs.push((alert, expr.to_string()));
        }
    }
    // What docs/monitoring.md promises.
    for want in [
        "ImgforgeInstanceDown",
        "ImgforgeHigh5xxRatio",
        "ImgforgeAllOriginServersDown",
        "ImgforgeHighLatencyP99",
        "ImgforgeCacheHitRatioDrop",
        "ImgforgeTransformQueueSaturated",
        "ImgforgeRateLimiting",
        "ImgforgeConfigReloadFailed",
    ] {
        assert!(names.contains(want), "missing alert {want}");
    }
    exprs
}

/// A gateway with traffic that makes every family appear (vector families only show once a
/// label set has been used): transforms, a URL error, cache fills with coalesced waits, a
/// 429, an unreachable origin.
async fn busy_gateway(origin: &Origin) -> Gateway {
    let dead = free_port();
    let png = testkit::encode(&testkit::quadrant_pixels(40, 30), 40, 30, 3, Format::Png);
    origin.put("a.png", png.to_vec());
    let routes = r#"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
allow_unsigned = true
[[site.route]]
prefix = "/slow"
cache = true
cache_ttl = "1m"
[[site.route]]
prefix = "/id"
rate_limit = { rate = "1/s", burst = 1 }
[[site.route]]
prefix = "/"
"#;
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}{}",
            site("s", &["s.test"], &[origin.addr], ""),
            site(
                "dead",
                &["dead.test"],
                &[format!("127.0.0.1:{dead}").parse().expect("addr")],
                ""
            )
        ))
        .start()
        .await;
    for path in [
        "/img/unsafe/w:20/plain/f/a.png",
        "/img/unsafe/w:21/plain/f/a.png@webp",
        "/img/unsafe/nope:1/plain/f/a.png",
    ] {
        gw.get("s.test", path).await.bytes().await.expect("body");
    }
    for r in gw
        .concurrently("s.test", (0..4).map(|_| "/slow/300".to_string()))
        .await
    {
        assert_eq!(r.status(), 200);
    }
    let statuses: Vec<u16> = gw
        .concurrently("s.test", (0..3).map(|_| "/id".to_string()))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(gw.get("dead.test", "/").await.status(), 502);
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_name_only_exported_metrics() {
    let mut exprs = dashboard_exprs();
    let panels = exprs.len();
    exprs.extend(alert_exprs());
    let origin = Origin::start("o").await;
    let gw = busy_gateway(&origin).await;
    // Counted in the logging phase: wait until the last request (the 502) is.
    gw.metric_settled("imgforge_requests_total", &[("site", "dead")], 1.0)
        .await;
    let exported = gw.metric_names().await;
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (whose, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{whose}: no metric in {expr}");
        for n in names {
            if !exported.contains(&n) && !PROMETHEUS_SERIES.contains(&n.as_str()) {
                unknown.push(format!("{whose}: {n}"));
            }
            used.insert(n);
        }
    }
    assert!(
        unknown.is_empty(),
        "not exported by the gateway: {unknown:#?}\nexported: {exported:#?}"
    );
    assert!(panels >= 20, "{panels} dashboard queries");
    // The dashboard covers the families the issue asks for.
    for family in [
        "imgforge_requests_total",
        "imgforge_request_duration_seconds_bucket",
        "imgforge_upstream_errors_total",
        "imgforge_upstream_healthy",
        "imgforge_cache_requests_total",
        "imgforge_cache_tier",
        "imgforge_rate_limited_total",
        "request_span_duration_seconds_bucket",
        "workers_utilization",
        "vips_memory_bytes",
    ] {
        assert!(used.contains(family), "{family} is on no panel or alert");
    }
}
