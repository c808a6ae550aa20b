//! The detector registry: built-ins (linked with `inventory`) and the
//! factories of every configured plugin, with where each comes from. Two
//! factories with one id refuse startup.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use detector_api::DetectorFactory;

use crate::config::{Config, ConfigError, ConfigProblem};
use crate::pipeline::detectors::{Builtin, DetectorSpec, SharedFactory};
use crate::plugins::{LoadedPlugin, PluginError, load_path, plugin_files};

/// One registered factory and its origin.
pub struct Registered {
    pub factory: SharedFactory,
    /// `None` for a built-in.
    pub plugin: Option<Arc<LoadedPlugin>>,
}

impl Registered {
    /// `builtin`, or the plugin's name.
    pub fn origin(&self) -> Arc<str> {
        match &self.plugin {
            Some(p) => p.name.as_str().into(),
            None => "builtin".into(),
        }
    }
}

/// Every factory the daemon knows, sorted by id.
pub struct Registry {
    pub entries: Vec<Registered>,
}

impl Registry {
    /// Built-ins plus the plugins of `config`. Plugin failures are problems
    /// (refusing startup), except for paths listed under `optional`, which
    /// only warn.
    pub fn load(config: &Config) -> (Registry, Vec<ConfigProblem>) {
        perf_sentinel_detectors::link();
        let mut entries: Vec<Registered> = detector_api::builtin_factories()
            .into_iter()
            .map(|f| Registered {
                factory: Arc::new(Builtin(f)) as SharedFactory,
                plugin: None,
            })
            .collect();
        let mut owners: BTreeMap<String, String> = entries
            .iter()
            .map(|e| (e.factory.id().to_owned(), "a built-in detector".to_owned()))
            .collect();
        let mut problems = Vec::new();
        let file = config
            .source
            .as_ref()
            .map_or_else(|| "<defaults>".to_owned(), |p| p.display().to_string());
        let lists = [
            ("plugins.paths", &config.plugins.paths, false),
            ("plugins.optional", &config.plugins.optional, true),
        ];
        for (key, paths, optional) in lists {
            for path in paths {
                for result in load_all(path) {
                    let loaded = result.and_then(|factories| {
                        claim_ids(&factories, &mut owners)?;
                        Ok(factories)
                    });
                    match loaded {
                        Ok(factories) => entries.extend(factories.into_iter().map(|f| {
                            let plugin = f.plugin.clone();
                            tracing::info!(
                                detector = f.id(),
                                plugin = %plugin.name,
                                version = %plugin.version,
                                path = %plugin.path.display(),
                                "plugin detector loaded"
                            );
                            Registered {
                                factory: Arc::new(f) as SharedFactory,
                                plugin: Some(plugin),
                            }
                        })),
                        Err(e) if optional => {
                            tracing::warn!("optional plugin skipped: {e}");
                        }
                        Err(e) => problems.push(ConfigProblem {
                            file: file.clone(),
                            key: key.to_owned(),
                            message: e.to_string(),
                        }),
                    }
                }
            }
        }
        entries.sort_by(|a, b| a.factory.id().cmp(b.factory.id()));
        (Registry { entries }, problems)
    }

    /// The factories, for config resolution.
    pub fn factories(&self) -> Vec<&dyn DetectorFactory> {
        self.entries
            .iter()
            .map(|e| e.factory.as_ref() as _)
            .collect()
    }

    /// Resolves the enabled detectors of `config` into shareable specs.
    pub fn specs(&self, config: &Config) -> Result<Vec<Arc<DetectorSpec>>, ConfigError> {
        let quarantine_after = config.daemon.quarantine_after;
        let plans = config.detector_plans(&self.factories())?;
        Ok(plans
            .into_iter()
            .filter(|p| p.enabled)
            .filter_map(|p| {
                let entry = self.entries.iter().find(|e| e.factory.id() == p.id)?;
                let factory = entry.factory.clone();
                Some(Arc::new(DetectorSpec {
                    description: factory.description().to_owned(),
                    cross_trace: factory.cross_trace(),
                    quarantine_after,
                    origin: entry.origin(),
                    plugin: entry.plugin.clone(),
                    id: p.id,
                    factory,
                    params: p.params,
                    services: p.services,
                    exclude_services: p.exclude_services,
                    stats: Default::default(),
                }))
            })
            .collect())
    }
}

/// Loads every plugin file `path` names; one result per file (or one error
/// for the path itself).
fn load_all(path: &Path) -> Vec<Result<Vec<crate::plugins::PluginFactory>, PluginError>> {
    match plugin_files(path) {
        Ok(files) => files.iter().map(|f| load_path(f)).collect(),
        Err(e) => vec![Err(e)],
    }
}

fn claim_ids(
    factories: &[crate::plugins::PluginFactory],
    owners: &mut BTreeMap<String, String>,
) -> Result<(), PluginError> {
    for f in factories {
        if let Some(other) = owners.get(f.id()) {
            return Err(PluginError::DuplicateId {
                path: f.plugin.path.clone(),
                id: f.id().to_owned(),
                other: other.clone(),
            });
        }
    }
    for f in factories {
        owners.insert(
            f.id().to_owned(),
            format!("plugin {}", f.plugin.path.display()),
        );
    }
    Ok(())
}
