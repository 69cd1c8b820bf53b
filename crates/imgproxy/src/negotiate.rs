//! Output-format negotiation (`Accept`) and client hints (`DPR`, `Width`).

use super::options::{Format, ProcessingOptions};
use super::settings::RouteSettings;

/// imgproxy ignores DPR hints above this.
const MAX_CLIENT_HINT_DPR: f64 = 8.0;

/// The request headers the URL API looks at (values as received).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHints<'a> {
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// `DPR`.
    pub dpr: Option<&'a str>,
    /// `Width`.
    pub width: Option<&'a str>,
    /// `Sec-CH-DPR`.
    pub sec_ch_dpr: Option<&'a str>,
    /// `Sec-CH-Width`.
    pub sec_ch_width: Option<&'a str>,
}

impl<'a> RequestHints<'a> {
    /// Picks the relevant headers out of a header map (first value of each;
    /// non-UTF-8 values are ignored).
    pub fn from_headers(headers: &'a http::HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        RequestHints {
            accept: get("accept"),
            dpr: get("dpr"),
            width: get("width"),
            sec_ch_dpr: get("sec-ch-dpr"),
            sec_ch_width: get("sec-ch-width"),
        }
    }
}

/// What the client can take, and which request headers the answer depends on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Negotiation {
    /// WebP may be chosen: enabled on the route (auto or enforce) and accepted.
    pub webp_ok: bool,
    /// AVIF may be chosen: enabled on the route (auto or enforce) and accepted.
    pub avif_ok: bool,
    /// WebP overrides an explicit format (`enforce_webp` and accepted).
    pub webp_enforced: bool,
    /// AVIF overrides an explicit format (`enforce_avif` and accepted).
    pub avif_enforced: bool,
    /// DPR from `Sec-CH-DPR`/`DPR` (client hints enabled, 0 < dpr ≤ 8).
    pub dpr: Option<f64>,
    /// Width from `Sec-CH-Width`/`Width` (client hints enabled, > 0).
    pub width: Option<u32>,
    /// Header names for `Vary`.
    pub vary: Vec<&'static str>,
}

impl Negotiation {
    /// The format `Accept` selects for a request with this explicit format, if
    /// any (AVIF before WebP). `None` means the answer does not depend on
    /// `Accept`; use it in the cache variant key.
    pub fn preferred(&self, explicit: Option<Format>) -> Option<Format> {
        match explicit {
            Some(_) if self.avif_enforced => Some(Format::Avif),
            Some(_) if self.webp_enforced => Some(Format::Webp),
            Some(_) => None,
            None if self.avif_ok => Some(Format::Avif),
            None if self.webp_ok => Some(Format::Webp),
            None => None,
        }
    }

    /// The `Vary` header value, if any.
    pub fn vary_header(&self) -> Option<String> {
        (!self.vary.is_empty()).then(|| self.vary.join(", "))
    }
}

/// Whether `accept` lists `mime` with a non-zero q (`*/*` does not count, as in
/// imgproxy; unlike imgproxy's substring test, `q=0` is honoured).
fn accepts(accept: &str, mime: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let ty = parts.next().unwrap_or("").trim();
        if !ty.eq_ignore_ascii_case(mime) {
            return false;
        }
        !parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        })
    })
}

/// Client-hint DPR and width (`Sec-CH-*` first), when enabled on the route.
pub(crate) fn client_hints(
    hints: &RequestHints<'_>,
    settings: &RouteSettings,
) -> (Option<f64>, Option<u32>) {
    if !settings.enable_client_hints {
        return (None, None);
    }
    let dpr = [hints.sec_ch_dpr, hints.dpr]
        .into_iter()
        .flatten()
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .find(|d| *d > 0.0 && *d <= MAX_CLIENT_HINT_DPR);
    let width = [hints.sec_ch_width, hints.width]
        .into_iter()
        .flatten()
        .filter_map(|v| v.trim().parse::<i64>().ok())
        .find(|w| *w > 0)
        .map(|w| u32::try_from(w).unwrap_or(u32::MAX));
    (dpr, width)
}

/// Computes the negotiation inputs for a parsed request.
///
/// `Vary: Accept` is emitted only when `Accept` can change the answer: some
/// auto/enforce setting is on, the request is not `raw`, and either the URL has
/// no explicit format or an enforce setting is on. Client-hint names are added
/// whenever client hints are enabled.
pub fn negotiate(
    hints: &RequestHints<'_>,
    settings: &RouteSettings,
    options: &ProcessingOptions,
) -> Negotiation {
    let accept = hints.accept.unwrap_or("");
    let convertible = !options.raw;
    let webp_on = convertible && (settings.auto_webp || settings.enforce_webp);
    let avif_on = convertible && (settings.auto_avif || settings.enforce_avif);
    let webp_ok = webp_on && accepts(accept, "image/webp");
    let avif_ok = avif_on && accepts(accept, "image/avif");
    let (dpr, width) = client_hints(hints, settings);
    let mut vary = Vec::new();
    let enforce = settings.enforce_webp || settings.enforce_avif;
    if (webp_on || avif_on) && (options.format.is_none() || enforce) {
        vary.push("Accept");
    }
    if settings.enable_client_hints {
        vary.extend(["Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width"]);
    }
    Negotiation {
        webp_ok,
        avif_ok,
        webp_enforced: webp_ok && settings.enforce_webp,
        avif_enforced: avif_ok && settings.enforce_avif,
        dpr,
        width,
        vary,
    }
}

/// Output format: enforced AVIF/WebP; else the explicit format; else AVIF/WebP
/// by `Accept` (AVIF first); else the source format if imgforge can encode
/// it; else JPEG. Animated sources: see [`choose_format_animated`].
pub fn choose_format(
    explicit: Option<Format>,
    negotiation: &Negotiation,
    source_format: Option<Format>,
) -> Format {
    choose_format_animated(explicit, negotiation, source_format, false)
}

/// [`choose_format`] with the animation flag known after decoding: AVIF is
/// skipped for animated sources (as imgproxy: no animated AVIF encoder).
pub fn choose_format_animated(
    explicit: Option<Format>,
    negotiation: &Negotiation,
    source_format: Option<Format>,
    animated: bool,
) -> Format {
    if let Some(f) = explicit {
        if negotiation.avif_enforced && !animated {
            return Format::Avif;
        }
        if negotiation.webp_enforced {
            return Format::Webp;
        }
        return f;
    }
    if negotiation.avif_ok && !animated {
        return Format::Avif;
    }
    if negotiation.webp_ok {
        return Format::Webp;
    }
    match source_format {
        Some(f) if f.is_output() => f,
        _ => Format::Jpeg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        auto_webp: bool,
        auto_avif: bool,
        enforce_webp: bool,
        hints: bool,
    ) -> RouteSettings {
        RouteSettings {
            auto_webp,
            auto_avif,
            enforce_webp,
            enable_client_hints: hints,
            ..RouteSettings::default()
        }
    }

    #[test]
    fn accept_parsing() {
        assert!(accepts("image/avif,image/webp,*/*", "image/webp"));
        assert!(accepts("text/html, IMAGE/WEBP;q=0.8", "image/webp"));
        assert!(!accepts("image/webp;q=0", "image/webp"));
        assert!(!accepts("*/*", "image/webp"));
        assert!(!accepts("image/webpx", "image/webp"));
    }

    /// (settings, accept, options, source format, expected format, `Vary: Accept`)
    type Row<'a> = (
        RouteSettings,
        &'a str,
        &'a ProcessingOptions,
        Option<Format>,
        Format,
        bool,
    );

    #[test]
    fn table() {
        let chrome = "image/avif,image/webp,image/apng,*/*;q=0.8";
        let opts = ProcessingOptions::default();
        let png = ProcessingOptions {
            format: Some(Format::Png),
            ..ProcessingOptions::default()
        };
        let raw = ProcessingOptions {
            raw: true,
            ..ProcessingOptions::default()
        };
        fn h(accept: &str) -> RequestHints<'_> {
            RequestHints {
                accept: Some(accept),
                ..RequestHints::default()
            }
        }
        let cases: Vec<Row> = vec![
            (
                settings(false, false, false, false),
                chrome,
                &opts,
                Some(Format::Png),
                Format::Png,
                false,
            ),
            (
                settings(false, false, false, false),
                chrome,
                &opts,
                Some(Format::Heic),
                Format::Jpeg,
                false,
            ),
            (
                settings(false, false, false, false),
                chrome,
                &opts,
                None,
                Format::Jpeg,
                false,
            ),
            (
                settings(true, false, false, false),
                chrome,
                &opts,
                Some(Format::Png),
                Format::Webp,
                true,
            ),
            (
                settings(true, true, false, false),
                chrome,
                &opts,
                Some(Format::Png),
                Format::Avif,
                true,
            ),
            (
                settings(true, true, false, false),
                "image/webp",
                &opts,
                Some(Format::Png),
                Format::Webp,
                true,
            ),
            (
                settings(true, true, false, false),
                "text/html",
                &opts,
                Some(Format::Gif),
                Format::Gif,
                true,
            ),
            (
                settings(true, false, false, false),
                chrome,
                &png,
                None,
                Format::Png,
                false,
            ),
            (
                settings(false, false, true, false),
                chrome,
                &png,
                None,
                Format::Webp,
                true,
            ),
            (
                settings(false, false, true, false),
                "image/png",
                &png,
                None,
                Format::Png,
                true,
            ),
            (
                settings(true, false, true, false),
                chrome,
                &raw,
                Some(Format::Png),
                Format::Png,
                false,
            ),
        ];
        for (i, (s, accept, o, src, want, vary)) in cases.into_iter().enumerate() {
            let n = negotiate(&h(accept), &s, o);
            assert_eq!(choose_format(o.format, &n, src), want, "case {i}");
            assert_eq!(n.vary.contains(&"Accept"), vary, "case {i}");
        }
    }

    #[test]
    fn animated_skips_avif() {
        let s = settings(true, true, false, false);
        let n = negotiate(
            &RequestHints {
                accept: Some("image/avif,image/webp"),
                ..RequestHints::default()
            },
            &s,
            &ProcessingOptions::default(),
        );
        assert_eq!(
            choose_format_animated(None, &n, Some(Format::Gif), true),
            Format::Webp
        );
        assert_eq!(n.preferred(None), Some(Format::Avif));
        assert_eq!(n.preferred(Some(Format::Png)), None);
    }

    #[test]
    fn client_hints_and_vary() {
        let s = settings(false, false, false, true);
        let h = RequestHints {
            dpr: Some("2"),
            sec_ch_dpr: Some("9"),
            width: Some("100"),
            sec_ch_width: Some("abc"),
            ..RequestHints::default()
        };
        let n = negotiate(&h, &s, &ProcessingOptions::default());
        assert_eq!((n.dpr, n.width), (Some(2.0), Some(100)));
        assert_eq!(
            n.vary_header().as_deref(),
            Some("Sec-CH-DPR, DPR, Sec-CH-Width, Width")
        );
        let off = negotiate(
            &h,
            &settings(false, false, false, false),
            &ProcessingOptions::default(),
        );
        assert_eq!((off.dpr, off.width, off.vary_header()), (None, None, None));
    }
}
