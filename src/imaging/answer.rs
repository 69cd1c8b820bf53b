//! What the image service answers: a complete response (status, headers, body), built by the
//! service for failures and by `render` for images.

use bytes::Bytes;

use crate::imgproxy::ImageRequest;
use crate::metrics::ErrorType;
use crate::source::Fetched;

/// A finished answer: status, headers, body.
pub(super) struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// imgproxy's error type when this answers a failure (counted in `errors_total`).
    pub error: Option<ErrorType>,
}

impl Answer {
    /// A 200 with its body, type and ETag.
    pub fn ok(body: Bytes, content_type: String, etag: String) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", content_type), ("etag", etag)],
            body,
            error: None,
        }
    }

    /// A short plain-text error, never cached.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let mut m: String = message.into();
        m.push('\n');
        Self {
            status,
            headers: vec![
                ("content-type", "text/plain; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body: Bytes::from(m),
            error: None,
        }
    }

    /// Marks the answer as a failure of imgproxy's type `t`.
    pub fn failed(mut self, t: ErrorType) -> Self {
        self.error = Some(t);
        self
    }
}

/// Headers every successful answer carries.
pub(super) fn common_headers(a: &mut Answer, image: &ImageRequest, fetched: &Fetched) {
    if !image.negotiation.vary.is_empty() {
        a.headers.push(("vary", image.negotiation.vary.join(", ")));
    }
    if let Some(lm) = &fetched.last_modified {
        a.headers.push(("last-modified", lm.clone()));
    }
    a.headers.push(("cache-control", cache_control(image)));
}

fn cache_control(image: &ImageRequest) -> String {
    const YEAR: i64 = 31_536_000;
    let max_age = match image.options.expires {
        Some(exp) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            (exp - now).clamp(0, YEAR)
        }
        None => YEAR,
    };
    format!("public, max-age={max_age}")
}
