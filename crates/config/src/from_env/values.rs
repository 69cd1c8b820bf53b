//! Values of the environment mode's variables: each parser says what it expected.

use std::net::SocketAddr;

/// `HOST:PORT`, a bare port (`3000`) or imgproxy's `:PORT`: all interfaces for the latter two.
pub(super) fn bind(v: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "invalid address {v:?}: expected IP:PORT (e.g. \"0.0.0.0:3000\"), :PORT or a port number"
        )
    };
    if v.starts_with('/') {
        return Err(format!(
            "{v:?}: listening on a Unix socket is not supported: expected IP:PORT"
        ));
    }
    let port_only = v.strip_prefix(':').unwrap_or(v);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(format!("0.0.0.0:{port}"));
    }
    v.parse::<SocketAddr>().map_err(|_| bad())?;
    Ok(v.to_string())
}

/// imgproxy's base URL of relative sources: `http(s)://HOST[:PORT]/` (no path: relative sources
/// are requested as given) → (server, tls, Host header).
pub(super) fn base_url(v: &str) -> Result<(String, bool, String), String> {
    let uri: http::Uri = v.parse().map_err(|e| format!("invalid URL {v:?}: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("invalid URL {v:?}: expected http:// or https://")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("invalid URL {v:?}: no host"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{v:?}: a base URL with a path is not supported (relative sources are requested \
             from the origin as given): use http(s)://HOST[:PORT]/"
        ));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bracketed = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok((
        format!("{bracketed}:{port}"),
        tls,
        uri.authority().map_or(host, |a| a.as_str()).to_string(),
    ))
}

pub(super) fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn hex_list(v: &str) -> Result<Vec<String>, String> {
    let items = list(v);
    if items.is_empty() {
        return Err("empty: expected a hex string (several, comma-separated, for rotation)".into());
    }
    for (i, item) in items.iter().enumerate() {
        if hex::decode(item).is_err() {
            return Err(format!(
                "entry {} is not a hex string (e.g. the output of `openssl rand -hex 32`)",
                i + 1
            ));
        }
    }
    Ok(items)
}

pub(super) fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid number {v:?}: expected a whole number"))
}

pub(super) fn positive(v: &str) -> Result<u32, String> {
    match number::<u32>(v)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

pub(super) fn megapixels(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(mp) if mp > 0.0 && mp.is_finite() => Ok(mp),
        _ => Err(format!(
            "invalid value {v:?}: expected a positive number of megapixels, e.g. 50"
        )),
    }
}

pub(super) fn quality(v: &str) -> Result<u8, String> {
    match v.trim().parse::<u8>() {
        Ok(q) if (1..=100).contains(&q) => Ok(q),
        _ => Err(format!("invalid quality {v:?}: expected 1 to 100")),
    }
}

/// imgproxy's booleans (Go's `strconv.ParseBool`) and the imgforge guide's (`yes`, `on`).
pub(super) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!("invalid boolean {v:?}: expected true or false")),
    }
}
