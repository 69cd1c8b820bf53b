//! Protection against hostile clients, requests and sources: rate limits, per-client
//! concurrency, the connection cap, request size limits, bearer auth, client addresses behind
//! proxies, and the SSRF address guard.

pub mod auth;
pub mod client_ip;
pub mod concurrency;
pub mod connections;
pub mod ratelimit;
pub mod request_size;
pub mod ssrf;
