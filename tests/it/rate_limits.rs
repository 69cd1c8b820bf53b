//! Rate limits at the edge.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_limit_answers_429_with_headers() {
    let o = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/\"\nrate_limit = { rate = \"1/m\", burst = 3 }\n[[site.route]]\nprefix = \"/free\"\n";
    let gw = Gateway::builder()
        .server("trusted_proxies = [\"127.0.0.1\"]")
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[o.addr], "")
        ))
        .start()
        .await;
    let from = |client: &'static str| {
        gw.request(reqwest::Method::GET, "s.test", "/id")
            .header("X-Forwarded-For", client)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").await.expect("send").status(), 200);
    }
    let r = from("203.0.113.1").await.expect("send");
    assert_eq!(r.status(), 429);
    let h = r.headers();
    assert_eq!(h["ratelimit-limit"], "3");
    assert_eq!(h["ratelimit-remaining"], "0");
    let retry: u64 = h["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.text().await.expect("body").contains("too many requests"));
    // Another client (as told by the trusted proxy) has its own bucket; other routes are free.
    assert_eq!(from("203.0.113.2").await.expect("send").status(), 200);
    for _ in 0..5 {
        assert_eq!(gw.get("s.test", "/free").await.status(), 404);
    }
    assert_eq!(o.hits(), 4 + 5, "refused requests never reach the origin");
    assert_eq!(
        gw.metric(
            "imgforge_rate_limited_total",
            &[("site", "s"), ("route", "/")]
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_forwarded_for_is_ignored_and_exempt_clients_pass() {
    let o = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/\"\nrate_limit = { rate = \"1/m\", burst = 2 }\n";
    let limited = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[o.addr], "")
        ))
        .start()
        .await;
    // Without trusted proxies, a forged X-Forwarded-For does not buy a fresh bucket.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = limited
            .request(reqwest::Method::GET, "s.test", "/id")
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .send()
            .await
            .expect("send");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429]);

    let exempt = Gateway::builder()
        .server("rate_limit_exempt = [\"127.0.0.0/8\"]")
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[o.addr], "")
        ))
        .start()
        .await;
    for _ in 0..5 {
        assert_eq!(exempt.get("s.test", "/id").await.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_routes() {
    let o = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/private\"\nauth_token = [\"old-token-0123456789\", \"new-token-0123456789\"]\n[[site.route]]\nprefix = \"/\"\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[o.addr], "")
        ))
        .start()
        .await;
    let with = |token: Option<&str>| {
        let mut r = gw.request(reqwest::Method::GET, "s.test", "/private/echo");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = with(None).await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        with(Some("wrong-token-0123456789"))
            .await
            .expect("send")
            .status(),
        401
    );
    for t in ["old-token-0123456789", "new-token-0123456789"] {
        let r = with(Some(t)).await.expect("send");
        assert_eq!(
            r.status(),
            404,
            "authorized: reaches the origin (which has no /private/echo)"
        );
    }
    assert_eq!(o.hits(), 2, "refused requests never reach the origin");
    assert!(
        !o.state
            .last_headers
            .lock()
            .expect("lock")
            .contains_key("authorization"),
        "the gateway's token is not passed on"
    );
    assert_eq!(
        gw.get("s.test", "/id").await.status(),
        200,
        "other routes stay open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_per_client_are_capped() {
    let o = Origin::start("o").await;
    let gw = Gateway::builder()
        .server("max_requests_per_client = 2")
        .config(&site("s", &["s.test"], &[o.addr], ""))
        .start()
        .await;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(
                gw.request(reqwest::Method::GET, "s.test", "/slow/800")
                    .send(),
            )
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = gw.get("s.test", "/id").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    for t in slow {
        assert_eq!(t.await.expect("join").expect("send").status(), 200);
    }
    // Slots are given back when requests end.
    assert_eq!(gw.get("s.test", "/id").await.status(), 200);
}
