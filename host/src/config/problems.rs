//! Problems and where they come from: every key of the merged table maps to
//! the file that set it, so a problem names the fragment rather than the main
//! file.

use std::collections::BTreeMap;

use super::ConfigProblem;

/// Which file each part of the merged table came from, so a problem names
/// the fragment that set a key rather than the main file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    main: String,
    // Dotted path -> file; the longest recorded prefix of a key wins.
    by_path: BTreeMap<String, String>,
}

impl Origins {
    pub(crate) fn new(main: &str) -> Self {
        Self {
            main: main.to_owned(),
            by_path: BTreeMap::new(),
        }
    }

    /// `path` and everything under it now comes from `file`.
    pub(crate) fn set(&mut self, path: &str, file: &str) {
        let below = format!("{path}.");
        self.by_path.retain(|p, _| !p.starts_with(&below));
        self.by_path.insert(path.to_owned(), file.to_owned());
    }

    pub(crate) fn file_of(&self, path: &str) -> &str {
        let mut best: Option<(&String, &String)> = None;
        for (p, file) in &self.by_path {
            let covers = path == p
                || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'.'));
            if covers && best.is_none_or(|(b, _)| p.len() > b.len()) {
                best = Some((p, file));
            }
        }
        best.map_or(self.main.as_str(), |(_, f)| f.as_str())
    }
}

/// Collects problems, attributing each to the file its key came from.
#[derive(Debug)]
pub(crate) struct Problems<'o> {
    pub(crate) origins: &'o Origins,
    pub(crate) list: Vec<ConfigProblem>,
}

impl<'o> Problems<'o> {
    pub(crate) fn new(origins: &'o Origins) -> Self {
        Self {
            origins,
            list: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, key: &str, message: impl Into<String>) {
        self.list.push(ConfigProblem {
            file: self.origins.file_of(key).to_owned(),
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

/// `prefix.key`, quoting `key` when it is not a bare TOML key so the dotted
/// path can be pasted back into a file.
pub(crate) fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}
