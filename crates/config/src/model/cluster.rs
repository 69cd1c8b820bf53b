//! `[cluster]`: fleet coordination over Redis (absent: a single node, exactly as without it).
//! Checked here without I/O; the gateway turns it into the cluster crate's settings.

use std::time::Duration;

use super::super::error::{ConfigError, Locator};
use crate::schema::ClusterSection;

/// Where the fleet's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisEndpoint {
    /// `redis://` or `rediss://` URL of one server.
    Standalone(String),
    /// `host:port` seeds of a Redis Cluster.
    Cluster(Vec<String>),
}

/// What a request does when Redis cannot decide (timeout, error, breaker open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisError {
    /// Decide with this node's own in-memory limiter (as without `[cluster]`).
    Local,
    /// Admit the request.
    Allow,
    /// Refuse it (429).
    Deny,
}

/// The `[cluster]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub redis: RedisEndpoint,
    /// Redis password (`password` or `password_file`), when not in the URL.
    pub password: Option<String>,
    /// This node's name in the fleet (default: the host name, chosen by the gateway).
    pub node_id: Option<String>,
    /// Budget of one Redis call.
    pub timeout: Duration,
    pub on_error: OnRedisError,
}

pub(super) fn cluster(
    c: &ClusterSection,
    loc: &Locator<'_>,
    errs: &mut Vec<ConfigError>,
) -> Option<ClusterConfig> {
    let redis = match (&c.redis, &c.redis_cluster) {
        (Some(url), None) => {
            let u = url.get_ref().trim();
            if !(u.starts_with("redis://") || u.starts_with("rediss://"))
                || u.split_once("://").is_none_or(|(_, rest)| rest.is_empty())
            {
                errs.push(loc.at(
                    url.span(),
                    "cluster.redis",
                    format!("{u:?}: expected redis://HOST:PORT[/DB] or rediss://…"),
                ));
                return None;
            }
            RedisEndpoint::Standalone(u.to_string())
        }
        (None, Some(nodes)) => {
            if nodes.is_empty() {
                errs.push(loc.whole(
                    "cluster.redis_cluster",
                    "the list of cluster nodes is empty",
                ));
                return None;
            }
            let mut seeds = Vec::new();
            for n in nodes {
                let t = n.get_ref().trim();
                let ok = t
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    errs.push(loc.at(
                        n.span(),
                        "cluster.redis_cluster",
                        format!("{t:?}: expected HOST:PORT"),
                    ));
                } else {
                    seeds.push(t.to_string());
                }
            }
            RedisEndpoint::Cluster(seeds)
        }
        (Some(_), Some(_)) => {
            errs.push(loc.whole(
                "cluster",
                "set either redis (one server) or redis_cluster (a Redis Cluster), not both",
            ));
            return None;
        }
        (None, None) => {
            errs.push(loc.whole(
                "cluster",
                "[cluster] needs redis = \"redis://HOST:PORT\" or redis_cluster = [\"HOST:PORT\", …]",
            ));
            return None;
        }
    };
    if c.timeout.0.is_zero() {
        errs.push(loc.whole("cluster.timeout", "must be greater than zero"));
    }
    if c.node_id.as_deref().is_some_and(|n| n.trim().is_empty()) {
        errs.push(loc.whole("cluster.node_id", "must not be empty"));
    }
    let on_error = match c.on_error.as_str() {
        "local" => OnRedisError::Local,
        "allow" => OnRedisError::Allow,
        "deny" => OnRedisError::Deny,
        other => {
            errs.push(loc.whole(
                "cluster.on_error",
                format!("{other:?}: expected local, allow or deny"),
            ));
            OnRedisError::Local
        }
    };
    Some(ClusterConfig {
        redis,
        password: c.password.clone(),
        node_id: c.node_id.clone(),
        timeout: c.timeout.0,
        on_error,
    })
}
