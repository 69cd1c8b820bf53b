//! The cache's span (the request's tree is drawn in docs/operations.md, "Tracing").

use tracing::Span;
use tracing::field::Empty;

/// The edge's cache storage lookup (memory, then disk).
pub fn cache_lookup() -> Span {
    tracing::debug_span!("cache_lookup", cache.hit = Empty, cache.tier = Empty)
}
