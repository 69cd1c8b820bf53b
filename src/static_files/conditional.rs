//! Pure HTTP validator, conditional-request and Range logic (RFC 9110 §8.8,
//! §13, §14). No I/O: the caller hands in header values and file metadata.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Strong entity tag for a file, derived from its size and mtime.
///
/// Cheap (no hashing of content) and changes whenever a normal write
/// changes the file; nanosecond mtime catches same-second rewrites on file
/// systems that record it.
pub fn etag(len: u64, mtime: SystemTime) -> String {
    let nanos = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// `Last-Modified` value (IMF-fixdate, second precision).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Drop sub-second precision: HTTP dates carry whole seconds, so comparing
/// raw mtimes would make every file look modified after the sent date.
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        // Pre-epoch mtimes are nonsense for the web; keep them as-is.
        Err(_) => t,
    }
}

/// The request headers that matter, already extracted as strings so that
/// this module stays independent of Pingora types.
#[derive(Debug, Default, Clone)]
pub struct Conditions<'a> {
    /// Range handling is only defined for GET (RFC 9110 §14.2): HEAD ignores it.
    pub is_get: bool,
    /// All `If-None-Match` field lines joined by `,`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a str>,
    /// `Range`.
    pub range: Option<&'a str>,
    /// `If-Range`.
    pub if_range: Option<&'a str>,
}

/// What to answer, given the conditions and the file's validators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 200 with the whole file.
    Full,
    /// 304, no body.
    NotModified,
    /// 206 with bytes `start..=end` (inclusive, both < len).
    Partial {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive.
        end: u64,
    },
    /// 416 with `Content-Range: bytes */len`.
    RangeNotSatisfiable,
}

/// Evaluate conditional headers and Range in RFC 9110 §13.2.2 order
/// (If-Match / If-Unmodified-Since are not supported: they matter for
/// state-changing methods, which this server does not accept).
pub fn decide(c: &Conditions<'_>, etag: &str, mtime: SystemTime, len: u64) -> Decision {
    if let Some(inm) = c.if_none_match {
        if if_none_match_hits(inm, etag) {
            return Decision::NotModified;
        }
    } else if let Some(ims) = c.if_modified_since {
        // A recipient MUST ignore If-Modified-Since when If-None-Match is
        // present, hence the `else`.
        if let Ok(since) = httpdate::parse_http_date(ims.trim())
            && whole_seconds(mtime) <= since
        {
            return Decision::NotModified;
        }
    }

    let Some(range) = c.range.filter(|_| c.is_get) else {
        return Decision::Full;
    };
    if let Some(ir) = c.if_range
        && !if_range_hits(ir, etag, mtime)
    {
        return Decision::Full;
    }
    match parse_range(range, len) {
        RangeSpec::Ignore => Decision::Full,
        RangeSpec::Unsatisfiable => Decision::RangeNotSatisfiable,
        RangeSpec::Bytes { start, end } => Decision::Partial { start, end },
    }
}

/// Weak comparison against a (possibly comma-separated) If-None-Match list.
fn if_none_match_hits(header: &str, etag: &str) -> bool {
    let ours = opaque(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.is_empty() && opaque(tag) == ours))
}

/// If-Range needs a *strong* match (RFC 9110 §13.1.5): a weak tag never
/// matches, and a date matches only if it equals Last-Modified exactly.
fn if_range_hits(header: &str, etag: &str, mtime: SystemTime) -> bool {
    let v = header.trim();
    if v.starts_with('"') {
        return v == etag;
    }
    if v.starts_with("W/") {
        return false;
    }
    httpdate::parse_http_date(v).is_ok_and(|d| d == whole_seconds(mtime))
}

/// Strip the weakness indicator: weak comparison ignores it.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Outcome of parsing a `Range` header against a representation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// Invalid, foreign unit, or several ranges: serve the full 200.
    Ignore,
    /// Syntactically valid but outside the file: 416.
    Unsatisfiable,
    /// One satisfiable range, inclusive, clamped to the file.
    Bytes {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive.
        end: u64,
    },
}

/// Parse a single-range `bytes=` header (`a-b`, `a-`, `-n`).
///
/// Multiple ranges are deliberately ignored (RFC 9110 §14.2 allows it):
/// multipart/byteranges buys little for images and is a known amplification
/// vector. Numbers too big for u64 saturate, which gives the right answer:
/// a huge first-pos is unsatisfiable, a huge last-pos or suffix means "to
/// the end".
pub fn parse_range(header: &str, len: u64) -> RangeSpec {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeSpec::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeSpec::Ignore,
        (true, false) => {
            let Some(n) = parse_pos(last) else {
                return RangeSpec::Ignore;
            };
            if n == 0 || len == 0 {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Bytes {
                start: len.saturating_sub(n),
                end: len - 1,
            }
        }
        (false, last_empty) => {
            let Some(start) = parse_pos(first) else {
                return RangeSpec::Ignore;
            };
            let end = if last_empty {
                u64::MAX
            } else {
                match parse_pos(last) {
                    Some(e) if e >= start => e,
                    // `5-3` is invalid syntax, not unsatisfiable.
                    _ => return RangeSpec::Ignore,
                }
            };
            if start >= len {
                return RangeSpec::Unsatisfiable;
            }
            RangeSpec::Bytes {
                start,
                end: end.min(len - 1),
            }
        }
    }
}

/// Decimal digits only (no sign, no spaces), saturating at u64::MAX.
fn parse_pos(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_table() {
        use RangeSpec::*;
        let b = |start, end| Bytes { start, end };
        let cases: &[(&str, u64, RangeSpec)] = &[
            ("bytes=0-0", 10, b(0, 0)),
            ("bytes=0-9", 10, b(0, 9)),
            ("bytes=2-5", 10, b(2, 5)),
            ("bytes=2-100", 10, b(2, 9)),
            ("bytes=9-", 10, b(9, 9)),
            ("bytes=0-", 10, b(0, 9)),
            ("bytes=-3", 10, b(7, 9)),
            ("bytes=-10", 10, b(0, 9)),
            ("bytes=-100", 10, b(0, 9)),
            ("BYTES=1-2", 10, b(1, 2)),
            (" bytes = 1-2 ", 10, b(1, 2)),
            ("bytes=0-99999999999999999999999", 10, b(0, 9)),
            ("bytes=-99999999999999999999999", 10, b(0, 9)),
            ("bytes=99999999999999999999999-", 10, Unsatisfiable),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=5-3", 10, Ignore),
            ("bytes=0-1,3-4", 10, Ignore),
            ("bytes=0-1,", 10, Ignore),
            ("bytes=-", 10, Ignore),
            ("bytes=", 10, Ignore),
            ("bytes=a-b", 10, Ignore),
            ("bytes=1-2-3", 10, Ignore),
            ("bytes=+1-2", 10, Ignore),
            ("bytes=1 - 2", 10, Ignore),
            ("bytes=0x1-2", 10, Ignore),
            ("items=0-1", 10, Ignore),
            ("bytes 0-1", 10, Ignore),
            ("", 10, Ignore),
            ("junk", 10, Ignore),
        ];
        for (h, len, want) in cases {
            assert_eq!(parse_range(h, *len), *want, "{h:?} len {len}");
        }
    }

    #[test]
    fn etag_format() {
        let t = UNIX_EPOCH + Duration::new(1, 5);
        assert_eq!(etag(255, t), "\"ff-3b9aca05\"");
        assert_eq!(etag(0, UNIX_EPOCH), "\"0-0\"");
    }

    #[test]
    fn conditional_table() {
        // mtime with sub-second part: IMS equal to its whole second must hit.
        let mtime = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let lm = http_date(mtime);
        let earlier = http_date(UNIX_EPOCH + Duration::from_secs(1_699_999_999));
        let later = http_date(UNIX_EPOCH + Duration::from_secs(1_700_000_001));
        let tag = etag(10, mtime);
        let weak = format!("W/{tag}");
        let other = "\"other\"";
        let list = format!("\"a\", {weak} , \"b\"");

        use Decision::*;
        let p = |start, end| Partial { start, end };
        struct Case<'a> {
            c: Conditions<'a>,
            want: Decision,
        }
        let get = Conditions {
            is_get: true,
            ..Default::default()
        };
        let cases = [
            Case {
                c: get.clone(),
                want: Full,
            },
            Case {
                c: Conditions {
                    if_none_match: Some(&tag),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_none_match: Some(&weak),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_none_match: Some(&list),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_none_match: Some("*"),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_none_match: Some(other),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    if_none_match: Some(""),
                    ..get.clone()
                },
                want: Full,
            },
            // INM present and missing → IMS ignored even if it would hit.
            Case {
                c: Conditions {
                    if_none_match: Some(other),
                    if_modified_since: Some(&lm),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    if_modified_since: Some(&lm),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_modified_since: Some(&later),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    if_modified_since: Some(&earlier),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    if_modified_since: Some("garbage"),
                    ..get.clone()
                },
                want: Full,
            },
            // 304 wins over Range.
            Case {
                c: Conditions {
                    if_none_match: Some(&tag),
                    range: Some("bytes=0-1"),
                    ..get.clone()
                },
                want: NotModified,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    ..get.clone()
                },
                want: p(0, 1),
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1,4-5"),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=20-"),
                    ..get.clone()
                },
                want: RangeNotSatisfiable,
            },
            // HEAD ignores Range.
            Case {
                c: Conditions {
                    is_get: false,
                    range: Some("bytes=0-1"),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some(&tag),
                    ..get.clone()
                },
                want: p(0, 1),
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some(other),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some(&weak),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some(&lm),
                    ..get.clone()
                },
                want: p(0, 1),
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some(&later),
                    ..get.clone()
                },
                want: Full,
            },
            Case {
                c: Conditions {
                    range: Some("bytes=0-1"),
                    if_range: Some("junk"),
                    ..get.clone()
                },
                want: Full,
            },
            // If-Range without Range is irrelevant.
            Case {
                c: Conditions {
                    if_range: Some(other),
                    ..get.clone()
                },
                want: Full,
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(
                decide(&case.c, &tag, mtime, 10),
                case.want,
                "case {i}: {:?}",
                case.c
            );
        }
    }
}
