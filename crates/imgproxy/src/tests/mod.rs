//! Cross-module tests of the URL API: a table-driven suite over
//! [`parse_request`](super::parse_request) (`table`, `table_routes`) and
//! property tests (`props`).

use std::collections::BTreeMap;

use super::*;

mod props;
mod table;
mod table_grammar;
mod table_routes;

/// Far in the future relative to every `exp` used in the tables except the past one.
pub(crate) const NOW: i64 = 1_700_000_000;

/// What a case expects.
pub(crate) enum Want {
    /// Parsing succeeds and the predicate holds for the request.
    Ok(fn(&ImageRequest) -> bool),
    /// Parsing fails with this status and a `Display` text containing the string.
    Err(u16, &'static str),
}

/// One row: a name, the path after the route prefix, the expectation.
pub(crate) struct Case(pub &'static str, pub &'static str, pub Want);

/// Unsigned route with local sources, no presets.
pub(crate) fn open_route() -> RouteSettings {
    RouteSettings {
        allow_unsigned: true,
        allow_local_sources: true,
        ..RouteSettings::default()
    }
}

pub(crate) fn presets(defs: &[(&str, &str)]) -> Presets {
    let map: BTreeMap<String, String> = defs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Presets::parse(&map) {
        Ok(p) => p,
        Err(e) => panic!("test presets invalid: {e}"),
    }
}

/// Runs a table against one route and reports every failing row at once.
/// Successful rows must also survive canonical → parse unchanged.
pub(crate) fn run(settings: &RouteSettings, hints: &RequestHints<'_>, cases: &[Case]) -> usize {
    let mut failures = Vec::new();
    for Case(name, path, want) in cases {
        let got = parse_request(path, hints, settings, NOW);
        match (want, &got) {
            (Want::Ok(check), Ok(req)) => {
                if !check(req) {
                    failures.push(format!("{name}: check failed for {req:#?}"));
                    continue;
                }
                match parse_canonical(&req.canonical, settings, NOW) {
                    Ok(again)
                        if again.options == req.options.without_expiry()
                            && again.source == req.source => {}
                    other => failures.push(format!(
                        "{name}: canonical {} re-parsed to {other:?}",
                        req.canonical
                    )),
                }
            }
            (Want::Err(status, text), Err(e)) => {
                if e.status() != *status || !e.to_string().contains(text) {
                    failures.push(format!(
                        "{name}: want {status} `{text}`, got {} `{e}`",
                        e.status()
                    ));
                }
            }
            (Want::Ok(_), Err(e)) => {
                failures.push(format!("{name}: unexpected error {} `{e}`", e.status()))
            }
            (Want::Err(status, text), Ok(req)) => {
                failures.push(format!("{name}: want {status} `{text}`, got {req:?}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}
