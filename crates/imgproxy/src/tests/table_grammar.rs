//! Path grammar, sources and canonical spelling on an unsigned route.

use super::Want::{Err as E, Ok as K};
use super::*;

fn o(r: &ImageRequest) -> &ProcessingOptions {
    &r.options
}

pub(super) const GRAMMAR_CASES: &[Case] = &[
    Case(
        "basic format",
        "/_/fill/300/400/sm/0/aHR0cDovL2UuY29t.jpg",
        E(404, "deprecated basic URL format"),
    ),
    Case(
        "escaped colons",
        "/_/rs%3Afill%3A100%3A50/plain/http://images.dev/a.jpg",
        K(|r| o(r).width == 100 && o(r).height == 50),
    ),
    Case(
        "plain escaped url",
        "/_/w:1/plain/http%3A%2F%2Fimages.dev%2Fa.jpg%3Fx%3D1@png",
        K(|r| {
            r.source == Source::Http("http://images.dev/a.jpg?x=1".into())
                && o(r).format == Some(Format::Png)
        }),
    ),
    Case(
        "plain empty extension",
        "/_/plain/http://images.dev/a.jpg@",
        K(|r| o(r).format.is_none()),
    ),
    Case(
        "plain scheme repaired",
        "/_/w:1/plain/http:/images.dev/a.jpg",
        K(|r| r.source == Source::Http("http://images.dev/a.jpg".into())),
    ),
    Case(
        "plain without options",
        "/_/plain/https://images.dev/a.jpg@webp",
        K(|r| o(r).format == Some(Format::Webp)),
    ),
    Case(
        "base64 split",
        "/_/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        K(|r| {
            r.source == Source::Http("http://example.com/images/curiosity.jpg".into())
                && o(r).format == Some(Format::Png)
        }),
    ),
    Case(
        "base64 padded",
        "/_/aHR0cDovL2UuY29tL2EuanBn==.webp",
        K(|r| r.source == Source::Http("http://e.com/a.jpg".into())),
    ),
    Case(
        "base64 no ext",
        "/_/w:5/aHR0cDovL2UuY29tL2EuanBn",
        K(|r| o(r).format.is_none()),
    ),
    Case(
        "plain two formats",
        "/_/plain/http://e.com/a.jpg@png@jpg",
        E(404, "Multiple formats are specified"),
    ),
    Case(
        "base64 two formats",
        "/_/aHR0cDovL2U.uY29t.png",
        E(404, "Multiple formats are specified"),
    ),
    Case("no source", "/_/w:100", E(404, "Image URL is empty")),
    Case(
        "bad base64",
        "/_/w:100/@@@.png",
        E(404, "Invalid url encoding"),
    ),
    Case(
        "bad percent",
        "/_/plain/http://e.com/100%.jpg",
        E(404, "Invalid url encoding"),
    ),
    Case(
        "raw ignores extension",
        "/_/raw:1/plain/http://e.com/a.jpg@bmp",
        K(|r| o(r).raw && o(r).format.is_none()),
    ),
    Case(
        "bad extension",
        "/_/plain/http://e.com/a.jpg@xyz",
        E(404, "Invalid format: xyz"),
    ),
    Case(
        "query ignored",
        "/_/w:10/plain/http://e.com/a.jpg@png?w=99",
        K(|r| o(r).width == 10 && o(r).format == Some(Format::Png)),
    ),
    Case("only signature", "/onlysig", E(404, "Invalid path")),
    Case("empty", "/", E(404, "Invalid path")),
    Case(
        "non-ASCII source (fuzzer regression)",
        "/_/plain/http://e.com/뮺뮺.jpg",
        K(|r| r.source == Source::Http("http://e.com/%EB%AE%BA%EB%AE%BA.jpg".into())),
    ),
    Case(
        "non-ASCII relative",
        "/_/plain/caf%C3%A9/%EB%AE%BA.jpg",
        K(|r| r.source == Source::Relative("/caf%C3%A9/%EB%AE%BA.jpg".into())),
    ),
    Case(
        "relative source",
        "/_/w:1/plain/images/a%20b.jpg",
        K(|r| r.source == Source::Relative("/images/a%20b.jpg".into())),
    ),
    Case(
        "relative traversal",
        "/_/plain/images/../../etc/passwd",
        E(404, "Invalid source URL"),
    ),
    Case(
        "local source",
        "/_/plain/local:///img/a.jpg",
        K(|r| r.source == Source::Local("/img/a.jpg".into())),
    ),
    Case(
        "local scheme repaired",
        "/_/plain/local:/img/a.jpg",
        K(|r| r.source == Source::Local("/img/a.jpg".into())),
    ),
    Case(
        "local traversal",
        "/_/plain/local:///img/../../etc/passwd",
        E(404, "Invalid source URL"),
    ),
    Case(
        "local encoded traversal",
        "/_/plain/local:///%252e%252e/etc/passwd",
        E(404, "Invalid source URL"),
    ),
    Case(
        "local NUL",
        "/_/plain/local:///a%2500.jpg",
        E(404, "Invalid source URL"),
    ),
    Case(
        "s3 source",
        "/_/plain/s3://bucket/a.jpg",
        E(404, "Unsupported source scheme: s3"),
    ),
    Case(
        "file source",
        "/_/plain/file:///etc/passwd",
        E(404, "Unsupported source scheme: file"),
    ),
    Case(
        "malformed signature",
        "/rs:fill:1:1/plain/http://e.com/a.jpg",
        E(403, "The signature appears to be a processing option"),
    ),
    Case(
        "alias and order independent",
        "/_/h:50/rt:fill/w:100/plain/http://e.com/a.jpg",
        K(|r| r.canonical == "/rt:fill/w:100/h:50/plain/http://e.com/a.jpg"),
    ),
    Case(
        "meta option same canonical",
        "/_/rs:fill:100:50/plain/http://e.com/a.jpg",
        K(|r| r.canonical == "/rt:fill/w:100/h:50/plain/http://e.com/a.jpg"),
    ),
];

#[test]
fn grammar_table() {
    run(&open_route(), &RequestHints::default(), GRAMMAR_CASES);
}

#[test]
fn every_option_name_is_exercised() {
    let all: String = super::table::OPTION_CASES
        .iter()
        .chain(GRAMMAR_CASES)
        .map(|c| c.1)
        .collect::<Vec<_>>()
        .join("/");
    let missing: Vec<&str> = apply::OPTION_NAMES
        .iter()
        .copied()
        .filter(|name| !all.contains(&format!("/{name}:")) && !all.contains(&format!("/_/{name}:")))
        .filter(|name| !["preset", "pr"].contains(name) && !apply::is_security_option(name))
        .collect();
    assert!(
        missing.is_empty(),
        "option names without a table row: {missing:?}"
    );
}
