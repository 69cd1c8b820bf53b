//! Pure URL-path → relative-file-path resolution.
//!
//! Nothing here touches the file system: the output is a list of plain
//! segments that can only name something *below* the root. Symlinks are the
//! I/O layer's problem (see `serve.rs`), because only the file system knows
//! where they point.

use std::path::PathBuf;

/// A request path that is safe to join onto the root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    /// Normalised segments, none empty, `.`, `..`, hidden or containing `/`.
    pub segments: Vec<String>,
    /// The client asked for a directory (`/dir/`); a regular file must not
    /// answer such a path, otherwise `/a.jpg/` would alias `/a.jpg`.
    pub trailing_slash: bool,
}

impl SafePath {
    /// The path relative to the root (empty for the root itself).
    pub fn relative(&self) -> PathBuf {
        self.segments.iter().collect()
    }
}

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed `%` escape, NUL byte, or decoded bytes that are not UTF-8:
    /// the request itself is broken, so saying so (400) reveals nothing.
    Malformed,
    /// The path tries to leave the root (`..` above the top) or uses a
    /// backslash, which only makes sense as a Windows-style traversal.
    /// Answered 404 like a missing file, and logged.
    Traversal,
    /// A segment starts with `.` (dotfiles, `.git`, `.env`): 404.
    Hidden,
}

/// Resolve `raw` (as the client sent it, optionally with `?query`) into a
/// path below the root.
///
/// Decoding happens once, *before* splitting, so `%2f` acts as a separator
/// and `..%2f` is treated exactly like `../`: the normaliser then sees every
/// `..` whatever its spelling. Double encoding (`%252e`) decodes to a literal
/// `%2e` file name, which is harmless.
pub fn resolve(raw: &str) -> Result<SafePath, Rejection> {
    let path = raw.split_once('?').map_or(raw, |(p, _)| p);
    let decoded = percent_decode(path.as_bytes()).ok_or(Rejection::Malformed)?;
    if decoded.contains(&0) {
        return Err(Rejection::Malformed);
    }
    if decoded.contains(&b'\\') {
        return Err(Rejection::Traversal);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| Rejection::Malformed)?;

    let mut segments: Vec<String> = Vec::new();
    let mut hidden = false;
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(Rejection::Traversal);
                }
            }
            s => {
                // Keep going after a hidden segment: a later `..` escaping
                // the root must still be reported as traversal.
                hidden |= s.starts_with('.');
                segments.push(s.to_owned());
            }
        }
    }
    if hidden {
        return Err(Rejection::Hidden);
    }
    // `/a/.` and `/a/..` name directories too.
    let last = decoded.rsplit('/').next().unwrap_or("");
    let trailing_slash = matches!(last, "" | "." | "..");
    Ok(SafePath {
        segments,
        trailing_slash,
    })
}

/// Decode `%XX` escapes; `None` on a truncated or non-hex escape.
/// `+` stays `+`: form encoding does not apply to paths.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hi = hex_val(*input.get(i + 1)?)?;
            let lo = hex_val(*input.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match resolve(raw) {
            Ok(p) => p.segments.join("/"),
            Err(e) => panic!("{raw:?} rejected: {e:?}"),
        }
    }

    #[test]
    fn traversal_table() {
        use Rejection::*;
        let cases: &[(&str, Rejection)] = &[
            ("/../etc/passwd", Traversal),
            ("/a/../../x", Traversal),
            ("/..", Traversal),
            ("..", Traversal),
            ("/%2e%2e/x", Traversal),
            ("/%2E%2E/x", Traversal),
            ("/..%2fx", Traversal),
            ("/%2e%2e%2fx", Traversal),
            ("/a%2f..%2f..%2fx", Traversal),
            ("/.%2e/x", Traversal),
            ("/a/./../../x", Traversal),
            ("/a\\..\\b", Traversal),
            ("/a%5c..%5cb", Traversal),
            ("/a%00b", Malformed),
            ("/a\0b", Malformed),
            ("/%", Malformed),
            ("/%2", Malformed),
            ("/%zz", Malformed),
            ("/%g0", Malformed),
            ("/%ff", Malformed), // not UTF-8
            ("/.hidden", Hidden),
            ("/a/.git/config", Hidden),
            ("/%2eenv", Hidden),
            ("/.well-known/x", Hidden),
            ("/.hidden/../../x", Traversal),
        ];
        for (raw, want) in cases {
            assert_eq!(resolve(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn accepted_table() {
        let cases: &[(&str, &str)] = &[
            ("/", ""),
            ("", ""),
            ("/a.jpg", "a.jpg"),
            ("a.jpg", "a.jpg"),
            ("//etc/passwd", "etc/passwd"),
            ("/a/../b", "b"),
            ("/a/./b", "a/b"),
            ("/a/b/..", "a"),
            ("/a%2fb", "a/b"),
            ("/a%20b.png", "a b.png"),
            ("/a+b", "a+b"),
            ("/%252e%252e/x", "%2e%2e/x"), // double encoding stays literal
            ("/img.jpg?w=100&x=/../..", "img.jpg"),
            ("/caf%C3%A9.png", "café.png"),
            ("/a..b/c.", "a..b/c."),
        ];
        for (raw, want) in cases {
            assert_eq!(ok(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn trailing_slash() {
        let t = |raw: &str| resolve(raw).map(|p| p.trailing_slash);
        assert_eq!(t("/"), Ok(true));
        assert_eq!(t("/dir/"), Ok(true));
        assert_eq!(t("/dir/."), Ok(true));
        assert_eq!(t("/dir/sub/.."), Ok(true));
        assert_eq!(t("/dir"), Ok(false));
        assert_eq!(t("/dir/?q=/"), Ok(true));
        assert_eq!(t("/f.jpg?q=/"), Ok(false));
    }

    #[test]
    fn relative_path() {
        let p = resolve("/a/b/c.webp").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.relative(), PathBuf::from("a/b/c.webp"));
        assert!(p.relative().is_relative());
    }
}
