//! Configuration errors: each names where it comes from (file and line, or the environment
//! variable), the key, and what was expected.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a bad value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in the config file (1-based line and column).
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// The file as a whole (no position known).
    FileWhole(PathBuf),
    /// An `IMGFORGE_*` environment variable.
    Env(String),
}

/// One configuration error. The process refuses to start (or `--check` exits 1) on any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted key path, e.g. `site.origin.servers`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}: ", path.display())?
            }
            Origin::FileWhole(path) => write!(f, "{}: ", path.display())?,
            Origin::Env(var) => write!(f, "environment variable {var}: ")?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "key `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Turns byte spans of one source text into error positions.
pub(crate) struct Locator<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Locator<'_> {
    /// An error at `span` (an empty `0..0` span from a default value means "no position").
    pub fn at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = if span == (0..0) {
            Origin::FileWhole(self.path.to_path_buf())
        } else {
            let (line, column) = line_col(self.text, span.start);
            Origin::File {
                path: self.path.to_path_buf(),
                line,
                column,
            }
        };
        ConfigError {
            origin,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A path from the file: relative paths are relative to the file's directory, so a config
    /// works the same whatever the working directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// An error about the file as a whole.
    pub fn whole(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.at(0..0, key, message)
    }

    /// Converts a TOML/serde error, recovering the key path from the text around its span.
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let mut message = err.message().trim().to_string();
        if message.is_empty() {
            // toml leaves some lexer errors (e.g. a lone carriage return) without a message.
            message = "invalid TOML syntax (a stray control character?)".into();
        }
        match err.span() {
            Some(span) if span != (0..0) => {
                let key = key_path_at(self.text, span.start);
                self.at(span, &key, message)
            }
            _ => self.whole("", message),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - line_start + 1)
}

/// Best-effort dotted key for the position: the enclosing `[table]` header plus the key on the line.
fn key_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |p| offset + p);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    if line.starts_with('[') {
        return line
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k,
        (Some(t), None) => t,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_keys() {
        let text = "[server]\nthreads = \"x\"\n\n[[site]]\nname = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 9), (2, 1));
        assert_eq!(key_path_at(text, 19), "server.threads");
        assert_eq!(
            key_path_at(text, text.find("name").unwrap_or(0)),
            "site.name"
        );
    }
}
