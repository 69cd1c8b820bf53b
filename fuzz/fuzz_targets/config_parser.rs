//! Fuzzes the config loader: any text must give a validated config or a list of errors (never a
//! panic), every error must name a key or say what is wrong, and every position must lie inside
//! the text.
//!
//! Run: `scripts/fuzz.sh config_parser` (or `cargo fuzz run config_parser` on nightly).

#![no_main]

use std::path::Path;

use imgforge_config::{ErrorOrigin, parse_offline};
use libfuzzer_sys::fuzz_target;

/// Relative paths in the text resolve under a directory that does not exist, so a fuzzed
/// `key_file = "x"` reads nothing.
const CONFIG_PATH: &str = "/nonexistent-imgforge-fuzz/fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Files named by `*_file` and `watermark` are read: keep device and proc files (which could
    // block or never end) out of reach; TOML escapes could spell their names, so skip those too.
    let reads_files = text.contains("_file") || text.contains("watermark");
    if reads_files
        && ["dev", "proc", "sys", "\\u", "\\U"]
            .iter()
            .any(|s| text.contains(s))
    {
        return;
    }
    let lines = text.split('\n').count();
    match parse_offline(Path::new(CONFIG_PATH), text) {
        Ok(config) => {
            assert!(!config.sites.is_empty(), "a valid config has a site");
            assert!(config.server.threads > 0);
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal names at least one error");
            for e in &errors {
                assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
                if let ErrorOrigin::File { line, column, .. } = &e.origin {
                    assert!(*line >= 1 && *line <= lines, "line {line} of {lines}: {e}");
                    assert!(*column >= 1, "{e}");
                }
                // Rendering never panics either.
                let _ = e.to_string();
            }
        }
    }
});
