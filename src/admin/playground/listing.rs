//! The images of a site's local root, for the playground's source list.

use std::path::Path;

/// File name endings listed (what libvips can usually read).
const IMAGE_EXTENSIONS: [&str; 12] = [
    "jpg", "jpeg", "png", "webp", "avif", "gif", "tif", "tiff", "heic", "heif", "svg", "bmp",
];
/// At most this many images are listed.
pub(super) const MAX_IMAGES: usize = 500;
/// Directories deeper than this are not entered.
const MAX_DEPTH: usize = 4;
/// At most this many directory entries are looked at in all.
const MAX_ENTRIES: usize = 20_000;

/// Image files under `root` as relative `/`-separated paths, sorted, and whether the list was
/// cut short. Hidden files and directories and symbolic links are skipped (a link could lead
/// out of the root); names that are not UTF-8 are skipped.
pub(super) fn images(root: &Path) -> (Vec<String>, bool) {
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut truncated = false;
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES || found.len() >= MAX_IMAGES {
                truncated = true;
                break;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    stack.push((entry.path(), path, depth + 1));
                }
            } else if kind.is_file() && is_image(&name) {
                found.push(path);
            }
        }
        if truncated {
            break;
        }
    }
    found.sort();
    (found, truncated)
}

fn is_image(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_images_sorted_and_skips_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        for f in [
            "b.JPG",
            "a.png",
            "notes.txt",
            ".hidden.png",
            "sub/c.webp",
            "sub/deeper/d.gif",
        ] {
            let path = p.join(f);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, b"x").expect("write");
        }
        std::fs::create_dir_all(p.join(".git")).expect("mkdir");
        std::fs::write(p.join(".git/e.png"), b"x").expect("write");
        std::os::unix::fs::symlink("/", p.join("escape")).expect("symlink");
        let (list, truncated) = images(p);
        assert_eq!(list, ["a.png", "b.JPG", "sub/c.webp", "sub/deeper/d.gif"]);
        assert!(!truncated);
    }
}
