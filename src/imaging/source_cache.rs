//! The source cache: originals fetched from origins are kept in the same cache storage as the
//! variants (under their own keys), so N variants of one source fetch it once while it is fresh.
//! Concurrent fetches of one source are coalesced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use pingora::cache::key::CacheKey;
use pingora::cache::storage::Storage;
use pingora::cache::trace::Span;
use pingora::cache::{CacheMeta, RespCacheable};
use pingora::http::ResponseHeader;

use crate::cache::TieredStorage;
use crate::cache::policy::{decide, source_key};
use crate::config::CachePolicy;
use crate::source::{FetchError, Fetched};

/// Originals in the cache storage.
pub struct SourceCache {
    storage: &'static TieredStorage,
    /// One lock per source being fetched right now.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SourceCache {
    /// A source cache over the process's cache storage.
    pub fn new(storage: &'static TieredStorage) -> Self {
        Self {
            storage,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The fresh cached original of `source_url` on `site`, or what `fetch` returns (stored when
    /// cacheable); `true` when it came from the cache.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        site: &str,
        source_url: &str,
        policy: &CachePolicy,
        fetch: F,
    ) -> Result<(Fetched, bool), FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Fetched, FetchError>>,
    {
        let key = source_key(site, source_url);
        let id = format!("{site}\n{source_url}");
        let id = id.as_str();
        if let Some(f) = self.lookup(&key).await {
            return Ok((f, true));
        }
        let lock = {
            let Ok(mut map) = self.inflight.lock() else {
                return fetch().await.map(|f| (f, false));
            };
            map.entry(id.to_string()).or_default().clone()
        };
        let guard = lock.lock().await;
        // Whoever held the lock before us may have stored it.
        let result = match self.lookup(&key).await {
            Some(f) => Ok((f, true)),
            None => {
                let fetched = fetch().await;
                if let Ok(f) = &fetched {
                    self.store(&key, f, policy).await;
                }
                fetched.map(|f| (f, false))
            }
        };
        drop(guard);
        if let Ok(mut map) = self.inflight.lock()
            && Arc::strong_count(&lock) <= 2
        {
            map.remove(id);
        }
        result
    }

    async fn lookup(&self, key: &CacheKey) -> Option<Fetched> {
        let span = Span::inactive().handle();
        let (meta, mut hit) = self.storage.lookup(key, &span).await.ok()??;
        if !meta.is_fresh(SystemTime::now()) {
            return None;
        }
        // A memory hit is one chunk: keep that `Bytes` (shared, no copy); join only when the
        // tier hands out several.
        let mut chunks: Vec<Bytes> = Vec::new();
        loop {
            match hit.read_body().await {
                Ok(Some(chunk)) => chunks.push(chunk),
                Ok(None) => break,
                Err(_) => return None,
            }
        }
        let body = match chunks.len() {
            1 => chunks.pop().unwrap_or_default(),
            _ => {
                let mut joined = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
                chunks.iter().for_each(|c| joined.extend_from_slice(c));
                joined.freeze()
            }
        };
        let _ = hit.finish(self.storage, key, &span).await;
        let h = |name: &str| {
            meta.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Some(Fetched {
            bytes: body,
            etag: h("etag"),
            last_modified: h("last-modified"),
            content_type: h("content-type"),
            cache_control: h("cache-control"),
            from: Some("source cache".into()),
        })
    }

    async fn store(&self, key: &CacheKey, f: &Fetched, policy: &CachePolicy) {
        let Ok(mut resp) = ResponseHeader::build(200, Some(4)) else {
            return;
        };
        for (name, value) in [
            ("etag", &f.etag),
            ("last-modified", &f.last_modified),
            ("content-type", &f.content_type),
            ("cache-control", &f.cache_control),
        ] {
            if let Some(v) = value {
                let _ = resp.insert_header(name, v.as_str());
            }
        }
        let meta: CacheMeta = match decide(&resp, policy, false, SystemTime::now()) {
            RespCacheable::Cacheable(m) => m,
            RespCacheable::Uncacheable(_) => return,
        };
        if f.bytes.len() > self.storage.max_entry_size() {
            return;
        }
        let span = Span::inactive().handle();
        let Ok(mut miss) = self.storage.get_miss_handler(key, &meta, &span).await else {
            return;
        };
        if miss.write_body(f.bytes.clone(), true).await.is_ok()
            && let Err(e) = miss.finish().await
        {
            tracing::debug!(error = %e, "source not kept in the cache");
        }
    }
}
