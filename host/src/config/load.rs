//! Finding and reading the configuration: the main file (explicit, in the
//! working directory, or built-in defaults) and its numbered fragments,
//! deep-merged in name order while remembering which file set each key.

use std::io;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::problems::{Origins, join_key};
use super::sections::{read_config, read_config_partial};
use super::{Config, ConfigError, ConfigProblem, DEFAULTS_FILE};

/// The config file looked for in the working directory.
pub const MAIN_FILE: &str = ".perf-sentinel.toml";
/// The folder of numbered fragments beside the config file.
pub const FRAGMENT_DIR: &str = ".perf-sentinel.d";

/// Loads the configuration: every `NN-name.toml` fragment from
/// `.perf-sentinel.d/` (beside the main file, else in `cwd`) merged in name
/// order, then the main file over them: `explicit` (relative to `cwd`; it
/// must exist), else `cwd/.perf-sentinel.toml` if present, else nothing.
pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
    let (config, problems) = load_partial(explicit, cwd)?;
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Like [`load`], but an invalid value does not stop it: the config comes
/// back with defaults in place of every invalid value, beside the list of
/// problems. Callers add the problems they find later (command-line
/// overrides, detector tables) so that one run reports them all, and refuse
/// to start when the list is not empty. Unreadable files and invalid TOML
/// are still errors at once.
pub fn load_partial(
    explicit: Option<&Path>,
    cwd: &Path,
) -> Result<(Config, Vec<ConfigProblem>), ConfigError> {
    let (source, text) = match explicit {
        Some(path) => {
            let path = cwd.join(path);
            let text = read(&path)?;
            (Some(path), text)
        }
        None => {
            let path = cwd.join(MAIN_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => (Some(path), text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (None, String::new()),
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }
    };
    let main_name = source
        .as_ref()
        .map_or_else(|| DEFAULTS_FILE.to_owned(), |p| p.display().to_string());
    let main = parse(&text, Path::new(&main_name))?;
    let mut origins = Origins::new(&main_name);

    // Fragments first, in name order, then the main file over them: shared
    // fragments set a base that the file an operator points at can override.
    let dir = source
        .as_ref()
        .and_then(|p| p.parent())
        .unwrap_or(cwd)
        .join(FRAGMENT_DIR);
    let (fragments, problems) = list_fragments(&dir)?;
    let mut table = Table::new();
    for path in fragments {
        let over = parse(&read(&path)?, &path)?;
        merge(
            &mut table,
            over,
            "",
            &path.display().to_string(),
            &mut origins,
        );
    }
    merge(&mut table, main, "", &main_name, &mut origins);
    Ok(read_config_partial(&table, origins, source, problems))
}

/// Reads a configuration from text; `file` names it in messages. `source`
/// is left `None`: the text may come from anywhere.
pub fn from_toml_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let table = parse(text, Path::new(file))?;
    read_config(&table, Origins::new(file), None, Vec::new())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse(text: &str, path: &Path) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: fold_parse_error(text, &e),
    })
}

/// toml's error is a multi-line snippet; a log line wants "line L, column
/// C: what".
pub(crate) fn fold_parse_error(text: &str, e: &toml::de::Error) -> String {
    let what = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = e.span() else {
        return what;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {what}")
}

/// The fragment files of `dir` in name order, and a problem for each entry
/// that is not named `NN-name.toml`. Hidden entries are skipped: mounted
/// Kubernetes ConfigMaps keep `..data` and similar bookkeeping there.
fn list_fragments(dir: &Path) -> Result<(Vec<PathBuf>, Vec<ConfigProblem>), ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut fragments = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if is_fragment_name(&name) {
            fragments.push(entry.path());
        } else {
            problems.push(ConfigProblem {
                file: entry.path().display().to_string(),
                key: String::new(),
                message: "fragment names must look like NN-name.toml".to_owned(),
            });
        }
    }
    fragments.sort();
    problems.sort_by(|a, b| a.file.cmp(&b.file));
    Ok((fragments, problems))
}

/// `NN-name.toml`: two digits, a dash, a name of letters, digits, `_`, `-`
/// or `.`.
fn is_fragment_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".toml") else {
        return false;
    };
    let b = stem.as_bytes();
    b.len() > 3
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'-'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Merges `over` into `base`: tables key by key, any other value replaces.
/// Records `file` as the origin of every value it sets.
fn merge(base: &mut Table, over: Table, prefix: &str, file: &str, origins: &mut Origins) {
    for (key, value) in over {
        let path = join_key(prefix, &key);
        match value {
            Value::Table(over) if matches!(base.get(&key), Some(Value::Table(_))) => {
                if let Some(Value::Table(inner)) = base.get_mut(&key) {
                    merge(inner, over, &path, file, origins);
                }
            }
            value => {
                origins.set(&path, file);
                base.insert(key, value);
            }
        }
    }
}
