//! Every log line a request causes carries its request id (the one answered in `X-Request-Id`):
//! at the edge (a dead origin: connect failure, proxy failure, access line) and in the image
//! service (a source the origin does not have, a source libvips cannot decode).

use crate::common::*;

use std::time::Duration;

use imgforge::imgproxy::Format;
use imgforge::transform::testkit;
use serde_json::Value;

/// The JSON lines logged since byte `from` once the access line of `request_id` is written
/// (the edge logs it last, after the response).
async fn lines_since(gw: &Gateway, from: usize, request_id: &str) -> Vec<Value> {
    let access = format!("\"request_id\":\"{request_id}\"");
    for _ in 0..250 {
        let logs = gw.logs();
        let new = logs.get(from..).unwrap_or("");
        let done = new
            .lines()
            .any(|l| l.contains("\"target\":\"access\"") && l.contains(&access));
        if done {
            return new
                .lines()
                // libvips may print its own warnings on stderr (same file): not log lines.
                .filter(|l| l.starts_with('{'))
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no access line for {request_id}:\n{}", gw.logs());
}

/// Sends `GET path` (with `X-Request-Id: sent` if given), checks the status, and returns the
/// request id answered and the lines logged for the request.
async fn request(
    gw: &Gateway,
    path: &str,
    sent: Option<&str>,
    status: u16,
) -> (String, Vec<Value>) {
    let from = gw.logs().len();
    let mut req = gw.request(reqwest::Method::GET, "s.test", path);
    if let Some(id) = sent {
        req = req.header("X-Request-Id", id);
    }
    let resp = req.send().await.expect("request");
    assert_eq!(resp.status().as_u16(), status, "{path}");
    let id = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    if let Some(sent) = sent {
        assert_eq!(id, sent, "a well-formed client id is kept");
    }
    let lines = lines_since(gw, from, &id).await;
    (id, lines)
}

/// Every line has `request_id == id` at the top level, and each message in `want` appears.
#[track_caller]
fn assert_all_carry(lines: &[Value], id: &str, want: &[&str]) {
    let text = || {
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for line in lines {
        assert_eq!(
            line.get("request_id").and_then(Value::as_str),
            Some(id),
            "line without the request id:\n{line}\nall lines:\n{}",
            text()
        );
    }
    for message in want {
        assert!(
            lines.iter().any(|l| l["message"] == *message),
            "no {message:?} line:\n{}",
            text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_origin_lines_carry_the_request_id() {
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gw = Gateway::builder()
        .config(&format!(
            "{}[[site.route]]\nprefix = \"/\"\n",
            site("s", &["s.test"], &[dead], "retries = 0")
        ))
        .start()
        .await;
    let (id, lines) = request(&gw, "/x", None, 502).await;
    assert_eq!(id.len(), 32, "a generated id");
    assert_all_carry(
        &lines,
        &id,
        &[
            "cannot connect to the upstream",
            "proxying failed",
            "request",
        ],
    );
    let access = lines
        .iter()
        .find(|l| l["target"] == "access")
        .expect("access");
    assert_eq!(access["status"], 502);
    assert_eq!(access["site"], "s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_service_lines_carry_the_edge_request_id() {
    let origin = Origin::start("o").await;
    let png = testkit::encode(&testkit::quadrant_pixels(64, 64), 64, 64, 3, Format::Png);
    // A PNG header (sniffed as PNG) with its pixel data cut off: libvips fails on the worker.
    origin.put("cut.png", png[..png.len() / 2].to_vec());
    let gw = Gateway::builder()
        .config(&format!(
            "{}[[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nallow_unsigned = true\n",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;

    let (id, lines) = request(
        &gw,
        "/img/unsafe/w:10/plain/f/cut.png",
        Some("client-id-1"),
        422,
    )
    .await;
    assert_all_carry(&lines, &id, &["transform failed", "request"]);
    let failed = lines
        .iter()
        .find(|l| l["message"] == "transform failed")
        .expect("transform line");
    assert_eq!(failed["site"], "s");
    assert_eq!(failed["route"], "/img");
    assert_eq!(failed["status"], 422);

    let (id, lines) = request(&gw, "/img/unsafe/w:10/plain/f/missing.png", None, 404).await;
    assert_all_carry(&lines, &id, &["source fetch failed", "request"]);
}
