//! Loading one plugin file: every way it can fail is a typed error naming
//! the file. Each file is loaded through its own library header, because
//! abi_stable's `RootModule::load_from_file` caches one library per module
//! type and would hand the first plugin back for every later file.
//! Libraries are never unloaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{LibraryError, RootModule, lib_header_from_path};
use abi_stable::std_types::RStr;
use detector_api::API_VERSION;
use detector_api::abi::{LogLevel, PLUGIN_MODULE_NAME, PluginContext, PluginModuleRef};

use super::PluginFactory;

/// A loaded plugin file.
#[derive(Debug)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {path}: no such file or directory")]
    Missing { path: PathBuf },
    #[error("plugin {path}: cannot read the directory: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {path}: not a loadable shared library ({detail})")]
    NotSharedLibrary { path: PathBuf, detail: String },
    #[error("plugin {path}: not a perf-sentinel plugin ({detail})")]
    NotAPlugin { path: PathBuf, detail: String },
    #[error(
        "plugin {path}: built against detector API {plugin}, this perf-sentinel speaks detector API {host}; rebuild the plugin against detector-api {}", env!("CARGO_PKG_VERSION")
    )]
    IncompatibleApi {
        path: PathBuf,
        plugin: String,
        host: String,
    },
    #[error(
        "plugin {path}: its types do not match this perf-sentinel's (detector-api {plugin} vs {host}): {first}"
    )]
    LayoutMismatch {
        path: PathBuf,
        plugin: String,
        host: String,
        first: String,
    },
    #[error(
        "plugin {path}: built with panic = \"abort\", so one panic would kill the daemon; build it with panic = \"unwind\""
    )]
    PanicAbort { path: PathBuf },
    #[error("plugin {path}: exports a detector with invalid id `{id}` (ids are lower_snake_case)")]
    BadId { path: PathBuf, id: String },
    #[error("plugin {path}: detector id `{id}` is already taken by {other}")]
    DuplicateId {
        path: PathBuf,
        id: String,
        other: String,
    },
}

impl PluginError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            PluginError::Missing { path }
            | PluginError::ReadDir { path, .. }
            | PluginError::NotSharedLibrary { path, .. }
            | PluginError::NotAPlugin { path, .. }
            | PluginError::IncompatibleApi { path, .. }
            | PluginError::LayoutMismatch { path, .. }
            | PluginError::PanicAbort { path }
            | PluginError::BadId { path, .. }
            | PluginError::DuplicateId { path, .. } => path,
        }
    }
}

/// The plugin files `path` names: itself, or the `*.so` / `*.dylib` files of
/// a directory in name order.
pub fn plugin_files(path: &Path) -> Result<Vec<PathBuf>, PluginError> {
    if !path.exists() {
        return Err(PluginError::Missing {
            path: path.to_owned(),
        });
    }
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| PluginError::ReadDir {
        path: path.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "so" || e == "dylib"))
        .collect();
    files.sort();
    Ok(files)
}

extern "C" fn host_log(level: LogLevel, message: RStr<'_>) {
    let message = message.as_str();
    match level {
        LogLevel::Error => tracing::error!(target: "plugin", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "plugin", "{message}"),
        LogLevel::Info => tracing::info!(target: "plugin", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "plugin", "{message}"),
    }
}

/// abi_stable's layout report runs to thousands of lines; keep the first
/// line that says what differs.
fn condense(report: &str) -> String {
    let interesting = report
        .lines()
        .map(str::trim)
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("mismatch") || l.contains("expected") || l.contains("incompatible")
        })
        .or_else(|| report.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("layout differs");
    interesting.chars().take(300).collect()
}

fn is_snake(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Loads one plugin file and returns its factories.
pub fn load_path(path: &Path) -> Result<Vec<PluginFactory>, PluginError> {
    // dlopen searches the library path for a bare relative name; make it
    // mean "relative to the working directory", as everywhere else.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let path = absolute.as_path();
    let path_buf = path.to_owned();
    if !path.exists() {
        return Err(PluginError::Missing { path: path_buf });
    }
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => PluginError::NotSharedLibrary {
            path: path_buf.clone(),
            detail: err.to_string(),
        },
        LibraryError::GetSymbolError { .. } => PluginError::NotAPlugin {
            path: path_buf.clone(),
            detail: "it exports no abi_stable root module; was it built with export_detectors!?"
                .into(),
        },
        other => PluginError::NotAPlugin {
            path: path_buf.clone(),
            detail: condense(&other.to_string()),
        },
    })?;
    let consts = header.root_mod_consts();
    if consts.name().as_str() != PLUGIN_MODULE_NAME {
        return Err(PluginError::NotAPlugin {
            path: path_buf,
            detail: format!(
                "its root module is `{}`, not `{PLUGIN_MODULE_NAME}`",
                consts.name()
            ),
        });
    }
    let host_crate = PluginModuleRef::VERSION_STRINGS.version.as_str().to_owned();
    let plugin_crate = consts.version_strings().version.as_str().to_owned();
    if !same_series(&plugin_crate, &host_crate) {
        return Err(PluginError::IncompatibleApi {
            path: path_buf,
            plugin: plugin_crate,
            host: host_crate,
        });
    }
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| match e {
            LibraryError::AbiInstability(report) => PluginError::LayoutMismatch {
                path: path_buf.clone(),
                plugin: plugin_crate.clone(),
                host: host_crate.clone(),
                first: condense(&report.to_string()),
            },
            LibraryError::IncompatibleVersionNumber { .. } => PluginError::IncompatibleApi {
                path: path_buf.clone(),
                plugin: plugin_crate.clone(),
                host: host_crate.clone(),
            },
            other => PluginError::NotAPlugin {
                path: path_buf.clone(),
                detail: condense(&other.to_string()),
            },
        })?;
    if module.api_version() != API_VERSION {
        return Err(PluginError::IncompatibleApi {
            path: path_buf,
            plugin: module.api_version().to_string(),
            host: API_VERSION.to_string(),
        });
    }
    if !module.panic_unwind() {
        return Err(PluginError::PanicAbort { path: path_buf });
    }
    (module.init())(PluginContext { log: host_log });
    let plugin = Arc::new(LoadedPlugin {
        path: path_buf.clone(),
        name: module.plugin_name().as_str().to_owned(),
        version: module.plugin_version().as_str().to_owned(),
    });
    let factories: Vec<PluginFactory> = (module.factories())()
        .into_iter()
        .map(|f| PluginFactory::new(f, plugin.clone()))
        .collect();
    for f in &factories {
        let id = detector_api::DetectorFactory::id(f);
        if !is_snake(id) {
            return Err(PluginError::BadId {
                path: path_buf,
                id: id.to_owned(),
            });
        }
    }
    Ok(factories)
}

/// 0.x versions are compatible within a minor, later ones within a major.
fn same_series(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> (String, String) {
        let mut it = v.split('.');
        (
            it.next().unwrap_or("").to_owned(),
            it.next().unwrap_or("").to_owned(),
        )
    };
    let (amaj, amin) = parts(a);
    let (bmaj, bmin) = parts(b);
    if amaj != bmaj {
        return false;
    }
    amaj != "0" || amin == bmin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_series() {
        assert!(same_series("0.1.0", "0.1.7"));
        assert!(!same_series("0.2.0", "0.1.0"));
        assert!(same_series("1.2.0", "1.9.1"));
        assert!(!same_series("2.0.0", "1.0.0"));
    }

    #[test]
    fn missing_and_non_library_files_are_named() {
        let dir = std::env::temp_dir().join(format!("ps-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope.so");
        let e = load_path(&missing).err().unwrap();
        assert!(matches!(e, PluginError::Missing { .. }));
        assert!(e.to_string().contains("nope.so"));
        let text = dir.join("text.so");
        std::fs::write(&text, "not an ELF file").unwrap();
        let e = load_path(&text).err().unwrap();
        assert!(matches!(e, PluginError::NotSharedLibrary { .. }), "{e}");
        assert!(e.to_string().contains("text.so"));
        assert_eq!(plugin_files(&dir).unwrap(), vec![text]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn condensing_keeps_the_line_that_says_what_differs() {
        let report = "\n\nLayout error\n  field `x`: expected u32, found u64\n  ...\n";
        assert_eq!(condense(report), "field `x`: expected u32, found u64");
    }
}
