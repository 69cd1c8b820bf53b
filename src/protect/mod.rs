//! Protection against hostile requests and sources: the SSRF address guard (rate limits and
//! auth join here with issue 6).

pub mod auth;
pub mod client_ip;
pub mod concurrency;
pub mod ratelimit;
pub mod ssrf;
