//! Host and path routing through the real gateway.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_route_to_their_sites() {
    let shop = Origin::start("shop").await;
    let blog = Origin::start("blog").await;
    let gw = Gateway::builder()
        .config(&site(
            "shop",
            &["shop.test", "*.shop.test"],
            &[shop.addr],
            "",
        ))
        .config(&site("blog", &["Blog.Test"], &[blog.addr], ""))
        .start()
        .await;

    let cases = [
        ("shop.test", "shop"),
        ("SHOP.test:8080", "shop"),
        ("img.shop.test", "shop"),
        ("a.b.shop.test", "shop"),
        ("blog.test", "blog"),
    ];
    for (host, want) in cases {
        let r = gw.get(host, "/id").await;
        assert_eq!(r.status(), 200, "{host}");
        assert_eq!(r.text().await.expect("body"), want, "{host}");
    }

    for host in ["other.test", "shop.test.evil", "evilshop.test"] {
        let r = gw.get(host, "/id").await;
        assert_eq!(r.status(), 421, "{host}");
        assert_eq!(
            r.headers()["content-type"].to_str().expect("ct"),
            "text/plain; charset=utf-8"
        );
        assert!(r.text().await.expect("body").contains("unknown host"));
    }
    assert_eq!(shop.hits() + blog.hits(), cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_site_takes_unknown_hosts() {
    let main = Origin::start("main").await;
    let other = Origin::start("other").await;
    let gw = Gateway::builder()
        .config(&site("other", &["other.test"], &[other.addr], ""))
        .config(
            &site("main", &["main.test"], &[main.addr], "")
                .replace("[site.origin]", "default = true\n[site.origin]"),
        )
        .start()
        .await;
    let r = gw.get("whatever.test", "/id").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "main");
    assert_eq!(
        gw.get("other.test", "/id").await.text().await.expect("b"),
        "other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_prefix_wins() {
    let origin = Origin::start("o").await;
    let routes = r#"
[[site.route]]
prefix = "/"
kind = "proxy"
[[site.route]]
prefix = "/img"
kind = "imgproxy"
key = ["736563726574"]
salt = ["68656C6C6F"]
[[site.route]]
prefix = "/img/raw"
kind = "proxy"
"#;
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    // `/img/...` is the image route: an unsigned URL is refused before any origin is touched.
    let r = gw
        .get("s.test", "/img/unsafe/rs:fit:10:10/plain/a.jpg")
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(origin.hits(), 0);
    // `/img/raw/...` is longer and proxies; `/imgx` is not under `/img`.
    assert_eq!(gw.get("s.test", "/img/raw/x").await.status(), 404);
    assert_eq!(gw.get("s.test", "/imgx").await.status(), 404);
    assert_eq!(origin.hits(), 2, "both reached the origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_without_route_is_404_from_the_gateway() {
    let origin = Origin::start("o").await;
    let routes = "[[site.route]]\nprefix = \"/static\"\n";
    let gw = Gateway::builder()
        .config(&format!(
            "{}{routes}",
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;
    let r = gw.get("s.test", "/elsewhere").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("body").contains("no route"));
    assert_eq!(gw.get("s.test", "/static/id").await.status(), 404);
    assert_eq!(origin.hits(), 1);
}
