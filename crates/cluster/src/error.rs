//! One error type for every Redis-backed operation, carrying what kind of failure it was.

use std::fmt;
use std::time::Duration;

/// What went wrong with a Redis operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The call did not finish within its budget (a stalled or overloaded Redis, a slow network).
    Timeout,
    /// The circuit breaker is open: Redis was not asked at all.
    BreakerOpen,
    /// No connection could be made or the connection broke.
    Connection,
    /// Redis answered with an error, or with something this crate did not expect.
    Redis,
}

impl ErrorKind {
    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::BreakerOpen => "breaker_open",
            ErrorKind::Connection => "connection",
            ErrorKind::Redis => "redis",
        }
    }
}

/// A failed Redis operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError {
    kind: ErrorKind,
    message: String,
}

impl ClusterError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn timeout(budget: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("no answer from Redis within {budget:?}"),
        )
    }

    pub(crate) fn breaker_open() -> Self {
        Self::new(
            ErrorKind::BreakerOpen,
            "circuit breaker open: Redis skipped",
        )
    }

    /// What kind of failure this was.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for ClusterError {}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> Self {
        let kind = if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            ErrorKind::Connection
        } else if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Redis
        };
        Self::new(kind, e.to_string())
    }
}
