//! OTLP export (built only with `--features otlp`): the real gateway exports its spans to a
//! small OTLP/HTTP collector on loopback; the spans arrive on SIGTERM (the exit flushes them)
//! with their names, one trace per request across the edge and the image service, the
//! parent/child links of the span tree and the request's attributes.

use crate::common::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use imgforge::imgproxy::Format;
use imgforge::transform::testkit;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// An OTLP/HTTP receiver: keeps every `POST /v1/traces` body.
struct Collector {
    addr: std::net::SocketAddr,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Collector {
    async fn start() -> Collector {
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind collector");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector { addr, bodies }
    }

    /// Every span received, with the service name of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for body in self.bodies.lock().expect("lock").iter() {
            let req = ExportTraceServiceRequest::decode(body.clone()).expect("protobuf body");
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| string_attr(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    out.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
                }
            }
        }
        out
    }
}

async fn receive(State(bodies): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes) -> &'static str {
    bodies.lock().expect("lock").push(body);
    // An empty ExportTraceServiceResponse: full success.
    ""
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_request_reach_the_collector_as_one_trace() {
    let collector = Collector::start().await;
    let origin = Origin::start("o").await;
    let png = testkit::encode(&testkit::quadrant_pixels(80, 40), 80, 40, 3, Format::Png);
    origin.put("quad.png", png.to_vec());
    let mut gw = Gateway::builder()
        .config(&format!(
            "[tracing]\notlp_endpoint = \"http://{}\"\nservice_name = \"imgforge-test\"\n\n{}\
             [[site.route]]\nprefix = \"/img\"\nkind = \"imgproxy\"\nallow_unsigned = true\n\
             [[site.route]]\nprefix = \"/\"\n",
            collector.addr,
            site("s", &["s.test"], &[origin.addr], "")
        ))
        .start()
        .await;

    let image_path = "/img/unsafe/rs:fit:40:40/plain/f/quad.png";
    let resp = gw.get("s.test", image_path).await;
    assert_eq!(resp.status(), 200);
    let image_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    let resp = gw.get("s.test", "/id").await;
    assert_eq!(resp.status(), 200);
    let proxy_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();

    // SIGTERM: the process drains, flushes the exporter and exits.
    gw.signal(libc::SIGTERM);
    assert_eq!(
        gw.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        gw.logs()
    );
    let spans = collector.spans();
    assert!(!spans.is_empty(), "nothing exported:\n{}", gw.logs());
    assert!(
        spans.iter().all(|(service, _)| service == "imgforge-test"),
        "service.name"
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();

    // The image request: one trace from the edge through the image service.
    let root = spans
        .iter()
        .find(|s| {
            s.name == "request"
                && string_attr(&s.attributes, "request_id").as_deref() == Some(&image_id)
        })
        .unwrap_or_else(|| panic!("no request span for {image_id}: {spans:#?}"));
    assert!(
        root.parent_span_id.is_empty(),
        "the edge's span is the root"
    );
    assert_eq!(string_attr(&root.attributes, "site").as_deref(), Some("s"));
    assert_eq!(
        string_attr(&root.attributes, "route").as_deref(),
        Some("/img")
    );
    assert_eq!(
        string_attr(&root.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        string_attr(&root.attributes, "url.path").as_deref(),
        Some(image_path)
    );
    assert_eq!(
        int_attr(&root.attributes, "http.response.status_code"),
        Some(200)
    );
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == root.trace_id)
        .collect();
    let one = |name: &str| -> &Span {
        let found: Vec<&&Span> = trace.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} span in the trace: {trace:#?}");
        found[0]
    };
    let by_id: HashMap<&[u8], &str> = trace
        .iter()
        .map(|s| (s.span_id.as_slice(), s.name.as_str()))
        .collect();
    let parent_of = |s: &Span| by_id.get(s.parent_span_id.as_slice()).copied();
    let upstream = one("upstream");
    let image = one("image");
    assert_eq!(parent_of(upstream), Some("request"));
    assert_eq!(
        string_attr(&upstream.attributes, "upstream").as_deref(),
        Some("image_service")
    );
    assert_eq!(
        parent_of(image),
        Some("upstream"),
        "continued over traceparent"
    );
    assert_eq!(
        string_attr(&image.attributes, "request_id").as_deref(),
        Some(image_id.as_str())
    );
    assert_eq!(
        string_attr(&image.attributes, "format").as_deref(),
        Some("png")
    );
    assert_eq!(int_attr(&image.attributes, "width"), Some(40));
    assert_eq!(int_attr(&image.attributes, "height"), Some(20));
    for name in ["download", "queue", "processing"] {
        assert_eq!(parent_of(one(name)), Some("image"), "{name}");
    }
    assert_eq!(parent_of(one("encode")), Some("processing"));
    assert!(
        trace
            .iter()
            .any(|s| s.name == "cache_lookup" && parent_of(s) == Some("request")),
        "the edge's cache lookup: {trace:#?}"
    );
    // Children end within their parent.
    for s in &trace {
        if let Some(parent) = trace.iter().find(|p| p.span_id == s.parent_span_id) {
            assert!(
                s.start_time_unix_nano >= parent.start_time_unix_nano
                    && s.end_time_unix_nano <= parent.end_time_unix_nano,
                "{} outside {}",
                s.name,
                parent.name
            );
        }
    }

    // The proxied request: its own trace, the origin's address on its upstream span.
    let proxied = spans
        .iter()
        .find(|s| {
            s.name == "request"
                && string_attr(&s.attributes, "request_id").as_deref() == Some(&proxy_id)
        })
        .expect("request span of the proxied request");
    assert_ne!(proxied.trace_id, root.trace_id);
    let origin_span = spans
        .iter()
        .find(|s| s.trace_id == proxied.trace_id && s.name == "upstream")
        .expect("upstream span of the proxied request");
    assert_eq!(
        string_attr(&origin_span.attributes, "server.address"),
        Some(origin.addr.to_string())
    );
    assert_eq!(
        int_attr(&origin_span.attributes, "http.response.status_code"),
        Some(200)
    );
}
