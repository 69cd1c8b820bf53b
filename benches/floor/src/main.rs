//! The framework's floor: what Pingora 0.9.1 alone costs per request on this machine, for
//! `benches/cache_hits.sh` and `benches/passthrough.sh` to report imgforge / floor and
//! floor / nginx in one run.
//!
//! ```text
//! imgforge-floor memory LISTEN FILE       answers FILE's bytes (read once) to every request
//! imgforge-floor proxy LISTEN UPSTREAM    proxies every request to UPSTREAM, upstream_peer only
//! ```
//!
//! Two worker threads, like the gateway's benchmark configs; nothing else is configured.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;
use pingora::services::listening::Service;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A fixed body from memory, with the headers a cache hit carries.
struct Memory {
    body: Vec<u8>,
    content_type: &'static str,
}

#[async_trait]
impl ServeHttp for Memory {
    async fn response(&self, _session: &mut ServerSession) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, self.content_type)
            .header(http::header::CONTENT_LENGTH, self.body.len())
            .body(self.body.clone())
            .unwrap_or_default()
    }
}

/// A proxy with nothing but the peer choice.
struct Proxy {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn usage() -> std::process::ExitCode {
    eprintln!("usage: imgforge-floor memory LISTEN FILE | proxy LISTEN UPSTREAM");
    std::process::ExitCode::from(2)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(listen), Some(arg)) = (args.get(1), args.get(2), args.get(3)) else {
        return usage();
    };
    let Some(mut conf) = ServerConf::new() else {
        eprintln!("no server configuration");
        return std::process::ExitCode::from(1);
    };
    conf.threads = 2;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    match mode.as_str() {
        "memory" => {
            let body = match std::fs::read(arg) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{arg}: {e}");
                    return std::process::ExitCode::from(1);
                }
            };
            let content_type = if arg.ends_with(".webp") {
                "image/webp"
            } else {
                "image/jpeg"
            };
            let mut svc = Service::new("floor memory".to_string(), Memory { body, content_type });
            svc.add_tcp(listen);
            server.add_service(svc);
        }
        "proxy" => {
            let mut svc = http_proxy_service(
                &Arc::clone(&server.configuration),
                Proxy {
                    upstream: arg.clone(),
                },
            );
            svc.add_tcp(listen);
            server.add_service(svc);
        }
        _ => return usage(),
    }
    server.run_forever()
}
