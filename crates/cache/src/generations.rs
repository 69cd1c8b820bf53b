//! Per-source cache generations: "purge every variant of this source" bumps the source's
//! generation, which is part of every variant key, so all old variants become unreachable at
//! once (and age out of the LRU tiers) without an index of which variants exist. Persisted next
//! to the disk cache so a purge survives a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

/// Generation numbers by `site \n source URL`; absent = 0.
#[derive(Debug, Default)]
pub struct Generations {
    map: RwLock<HashMap<String, u64>>,
    file: Option<PathBuf>,
}

fn key(site: &str, source: &str) -> String {
    format!("{site}\n{source}")
}

impl Generations {
    /// Loads the persisted generations from `file` (missing or unreadable lines are ignored:
    /// the worst outcome is an old variant served until it expires).
    pub fn load(file: Option<PathBuf>) -> Self {
        let mut map = HashMap::new();
        if let Some(text) = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
            for line in text.lines() {
                if let Some((gen_, rest)) = line.split_once('\t')
                    && let (Ok(g), Some((site, source))) = (gen_.parse(), rest.split_once('\t'))
                {
                    map.insert(key(site, source), g);
                }
            }
        }
        Self {
            map: RwLock::new(map),
            file,
        }
    }

    /// The current generation of a source.
    pub fn get(&self, site: &str, source: &str) -> u64 {
        self.map
            .read()
            .ok()
            .and_then(|m| m.get(&key(site, source)).copied())
            .unwrap_or(0)
    }

    /// Starts a new generation for a source; returns it. Persists when a file is configured.
    pub fn bump(&self, site: &str, source: &str) -> std::io::Result<u64> {
        let Ok(mut m) = self.map.write() else {
            return Err(std::io::Error::other("generation table poisoned"));
        };
        let g = m.entry(key(site, source)).or_insert(0);
        *g += 1;
        let new = *g;
        self.persist(&m)?;
        Ok(new)
    }

    /// Raises each `(site, source)` to at least its generation (a table another node reports);
    /// persists once. Returns how many changed.
    pub fn raise_all<'a>(
        &self,
        to: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
    ) -> std::io::Result<usize> {
        let Ok(mut m) = self.map.write() else {
            return Err(std::io::Error::other("generation table poisoned"));
        };
        let mut changed = 0;
        for (site, source, generation) in to {
            let g = m.entry(key(site, source)).or_insert(0);
            if *g < generation {
                *g = generation;
                changed += 1;
            }
        }
        if changed > 0 {
            self.persist(&m)?;
        }
        Ok(changed)
    }

    fn persist(&self, m: &HashMap<String, u64>) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut text = String::new();
        for (k, g) in m.iter() {
            if let Some((site, source)) = k.split_once('\n')
                && !source.contains(['\n', '\t'])
            {
                text.push_str(&format!("{g}\t{site}\t{source}\n"));
            }
        }
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_and_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("generations");
        let g = Generations::load(Some(file.clone()));
        assert_eq!(g.get("s", "/a.jpg"), 0);
        assert_eq!(g.bump("s", "/a.jpg").expect("bump"), 1);
        assert_eq!(g.bump("s", "/a.jpg").expect("bump"), 2);
        assert_eq!(g.get("t", "/a.jpg"), 0);
        let again = Generations::load(Some(file.clone()));
        assert_eq!(again.get("s", "/a.jpg"), 2);
    }

    #[test]
    fn raise_all_only_goes_up_and_persists_once_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("generations");
        let g = Generations::load(Some(file.clone()));
        g.bump("s", "/a.jpg").expect("bump");
        g.bump("s", "/a.jpg").expect("bump");
        let changed = g
            .raise_all([("s", "/a.jpg", 1), ("s", "/b.jpg", 3)])
            .expect("raise");
        assert_eq!(changed, 1);
        assert_eq!((g.get("s", "/a.jpg"), g.get("s", "/b.jpg")), (2, 3));
        assert_eq!(g.raise_all([("s", "/b.jpg", 3)]).expect("raise"), 0);
        assert_eq!(Generations::load(Some(file)).get("s", "/b.jpg"), 3);
    }
}
