//! Host + path → site → route. Pure: built once from the config, shared read-only by the edge.
//!
//! Host matching: exact names first, then the longest `*.suffix`, then the default site. The port
//! is ignored and names compare case-insensitively. Within a site the longest matching path
//! prefix wins; a prefix matches on a segment boundary (`/img` matches `/img` and `/img/x`, not
//! `/imgx`), except `/` which matches everything.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, HostPattern, Route, Site};

/// The routing table.
#[derive(Debug)]
pub struct Router {
    sites: Vec<Arc<Site>>,
    exact: HashMap<String, usize>,
    /// `(".example.com", site index)`, longest suffix first.
    suffixes: Vec<(String, usize)>,
    default: Option<usize>,
}

/// A route of one routing table: its site's index in the config and its own in the site
/// (routes are kept longest prefix first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId {
    pub site: usize,
    pub route: usize,
}

/// Result of routing one request.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    Matched {
        site: &'a Arc<Site>,
        route: &'a Route,
        id: RouteId,
    },
    /// No site for this host (and no default site): 421.
    UnknownHost,
    /// The site (at `index`) has no route for this path: 404.
    NoRoute { site: &'a Arc<Site>, index: usize },
}

impl Router {
    /// Builds the table from a validated config.
    pub fn new(config: &Config) -> Self {
        let sites: Vec<Arc<Site>> = config.sites.iter().cloned().map(Arc::new).collect();
        let mut exact = HashMap::new();
        let mut suffixes = Vec::new();
        let mut default = None;
        for (i, site) in sites.iter().enumerate() {
            for h in &site.hosts {
                match h {
                    HostPattern::Exact(name) => {
                        exact.insert(name.clone(), i);
                    }
                    HostPattern::Suffix(s) => suffixes.push((s.clone(), i)),
                }
            }
            if site.default {
                default = Some(i);
            }
        }
        suffixes.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Self {
            sites,
            exact,
            suffixes,
            default,
        }
    }

    /// All sites, in config order.
    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }

    /// Finds the site for a `Host` header value (may carry a port) or an authority.
    pub fn site_for_host(&self, host: Option<&str>) -> Option<&Arc<Site>> {
        self.site_index(host).and_then(|i| self.sites.get(i))
    }

    fn site_index(&self, host: Option<&str>) -> Option<usize> {
        host.map(normalize_host)
            .and_then(|h| {
                self.exact.get(h.as_str()).copied().or_else(|| {
                    self.suffixes
                        .iter()
                        .find(|(suffix, _)| h.len() > suffix.len() && h.ends_with(suffix.as_str()))
                        .map(|(_, i)| *i)
                })
            })
            .or(self.default)
    }

    /// Routes a request.
    pub fn route(&self, host: Option<&str>, path: &str) -> RouteMatch<'_> {
        let Some((index, site)) = self
            .site_index(host)
            .and_then(|i| Some((i, self.sites.get(i)?)))
        else {
            return RouteMatch::UnknownHost;
        };
        match site
            .routes
            .iter()
            .position(|r| prefix_matches(&r.prefix, path))
        {
            Some(route) => RouteMatch::Matched {
                site,
                route: &site.routes[route],
                id: RouteId { site: index, route },
            },
            None => RouteMatch::NoRoute { site, index },
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" || prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

/// Lower-cases and strips the port (and IPv6 brackets stay: `[::1]:80` → `[::1]`).
fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let without_port = if h.starts_with('[') {
        h.find(']').map_or(h, |end| &h[..=end])
    } else {
        h.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(h, |(name, _)| name)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router() -> Router {
        let text = r#"
[[site]]
name = "shop"
hosts = ["shop.test", "*.shop.test"]
[site.origin]
servers = ["127.0.0.1:1"]
[[site.route]]
prefix = "/"
[[site.route]]
prefix = "/img"
[[site.route]]
prefix = "/img/special/"

[[site]]
name = "deep"
hosts = ["*.eu.shop.test"]
[site.origin]
servers = ["127.0.0.1:2"]

[[site]]
name = "blog"
hosts = ["blog.test"]
[site.origin]
servers = ["127.0.0.1:3"]
[[site.route]]
prefix = "/static"
"#;
        let cfg = crate::config::parse(Path::new("t.toml"), text, |_| None).expect("valid");
        Router::new(&cfg)
    }

    fn site_name(r: &Router, host: &str) -> Option<String> {
        r.site_for_host(Some(host)).map(|s| s.name.clone())
    }

    #[test]
    fn hosts() {
        let r = router();
        let cases = [
            ("shop.test", Some("shop")),
            ("SHOP.Test:8080", Some("shop")),
            ("shop.test.", Some("shop")),
            ("a.shop.test", Some("shop")),
            ("x.eu.shop.test", Some("deep")),
            ("eu.shop.test", Some("shop")),
            ("blog.test", Some("blog")),
            ("evilshop.test", None),
            ("other.test", None),
            ("", None),
        ];
        for (host, want) in cases {
            assert_eq!(site_name(&r, host).as_deref(), want, "{host}");
        }
        assert!(matches!(r.route(None, "/"), RouteMatch::UnknownHost));
    }

    #[test]
    fn longest_prefix_on_segment_boundary() {
        let r = router();
        let prefix = |path: &str| match r.route(Some("shop.test"), path) {
            RouteMatch::Matched { route, .. } => Some(route.prefix.clone()),
            _ => None,
        };
        assert_eq!(prefix("/img/a.jpg").as_deref(), Some("/img"));
        assert_eq!(prefix("/img").as_deref(), Some("/img"));
        assert_eq!(prefix("/imgx").as_deref(), Some("/"));
        assert_eq!(prefix("/img/special/x").as_deref(), Some("/img/special/"));
        assert_eq!(prefix("/img/special").as_deref(), Some("/img"));
        assert_eq!(prefix("/").as_deref(), Some("/"));
        assert!(matches!(
            r.route(Some("blog.test"), "/other"),
            RouteMatch::NoRoute { index: 2, .. }
        ));
    }

    #[test]
    fn ids_index_the_config() {
        let r = router();
        let RouteMatch::Matched { site, route, id } = r.route(Some("a.shop.test"), "/img/x") else {
            panic!("no match");
        };
        assert_eq!(id.site, 0);
        assert_eq!(site.routes[id.route].prefix, route.prefix);
        let RouteMatch::Matched { id, .. } = r.route(Some("blog.test"), "/static/a") else {
            panic!("no match");
        };
        assert_eq!(id, RouteId { site: 2, route: 0 });
    }
}
