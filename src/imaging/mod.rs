//! The image service: an internal HTTP service (on a private Unix socket) that the edge proxies
//! image routes to. It re-verifies the URL, fetches the source, transforms it on the libvips
//! worker pool and answers one complete response (status, Content-Type, Content-Length, ETag,
//! Vary). Keeping it behind a proxy hop means the edge can cache its answers like any origin
//! response, and an error found during a transform is a proper status, never a truncated 200.

mod answer;
pub mod headers;
mod render;
mod service;
mod source_cache;

pub use service::{ImageService, upstream_timeout};
