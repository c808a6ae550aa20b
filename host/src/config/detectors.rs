//! Per-detector settings (`[detectors.<id>]`, environment overlays) and their
//! resolution against the registered factories into build-ready plans. Every
//! table is built once here, active or not, so a typo anywhere fails startup.

use std::collections::BTreeMap;

use detector_api::DetectorFactory;
use toml::{Table, Value};

use super::fields::{Section, describe, expected, string_array};
use super::problems::{Problems, join_key};
use super::{Config, ConfigError, check_environment};

/// One detector table as written: the host-handled keys, and the rest for the
/// detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorSettings {
    /// `None`: the factory's default (or, in an overlay, the base table's).
    pub enabled: Option<bool>,
    /// `None`: not set, so all services (or, in an overlay, the base list).
    /// Kept apart from `Some(vec![])` so an overlay can widen a scope.
    pub services: Option<Vec<String>>,
    pub exclude_services: Option<Vec<String>>,
    /// Every other key, for the factory's `build`.
    pub params: Table,
}

/// All detector tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorsConfig {
    /// `[detectors.<id>]`, by id.
    pub tables: BTreeMap<String, DetectorSettings>,
    /// `[environments.<env>.detectors.<id>]`, by environment then id.
    pub overlays: BTreeMap<String, BTreeMap<String, DetectorSettings>>,
}

/// One detector ready to build for the active environment.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorPlan {
    pub id: String,
    pub enabled: bool,
    /// Empty: every service.
    pub services: Vec<String>,
    pub exclude_services: Vec<String>,
    /// Inherited `[detection]` keys, then the detector's table, then the
    /// active environment's overlay.
    pub params: Table,
}

impl DetectorSettings {
    fn read(path: &str, value: &Value, problems: &mut Problems<'_>) -> Option<Self> {
        let Value::Table(table) = value else {
            problems.push(path, expected("a detector table", value));
            return None;
        };
        let mut settings = Self::default();
        for (key, value) in table {
            let key_path = join_key(path, key);
            match key.as_str() {
                "enabled" => match value {
                    Value::Boolean(b) => settings.enabled = Some(*b),
                    other => problems.push(&key_path, expected("a boolean (true or false)", other)),
                },
                "services" => settings.services = string_array(&key_path, value, problems),
                "exclude_services" => {
                    settings.exclude_services = string_array(&key_path, value, problems);
                }
                _ => {
                    settings.params.insert(key.clone(), value.clone());
                }
            }
        }
        Some(settings)
    }

    /// `over`'s keys replace `self`'s, one by one.
    fn overlaid(&self, over: &Self) -> Self {
        let mut params = self.params.clone();
        params.extend(over.params.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            enabled: over.enabled.or(self.enabled),
            services: over.services.clone().or_else(|| self.services.clone()),
            exclude_services: over
                .exclude_services
                .clone()
                .or_else(|| self.exclude_services.clone()),
            params,
        }
    }
}

fn read_tables(
    path: &str,
    table: &Table,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, DetectorSettings> {
    table
        .iter()
        .filter_map(|(id, value)| {
            let settings = DetectorSettings::read(&join_key(path, id), value, problems)?;
            Some((id.clone(), settings))
        })
        .collect()
}

impl DetectorsConfig {
    /// Reads `[detectors]` and `[environments]` (both already known to be
    /// tables when present).
    pub(crate) fn read(
        detectors: Option<&Table>,
        environments: Option<&Table>,
        problems: &mut Problems<'_>,
    ) -> Self {
        let tables = detectors
            .map(|t| read_tables("detectors", t, problems))
            .unwrap_or_default();
        let mut overlays = BTreeMap::new();
        for (env, value) in environments.into_iter().flatten() {
            let path = join_key("environments", env);
            if let Err(message) = check_environment(env) {
                problems.push(&path, format!("environment name {message}"));
            }
            let Value::Table(env_table) = value else {
                problems.push(&path, expected("a table", value));
                continue;
            };
            let mut s = Section::new(&path, env_table, problems);
            let detectors = s.table("detectors");
            s.finish();
            let detectors_path = join_key(&path, "detectors");
            let overlay = detectors
                .map(|t| read_tables(&detectors_path, t, problems))
                .unwrap_or_default();
            overlays.insert(env.clone(), overlay);
        }
        Self { tables, overlays }
    }
}

impl Config {
    /// Resolves every factory against this configuration for
    /// `daemon.environment`. Refuses tables naming no known detector and any
    /// table (base or overlay, active or not, enabled or not) the factory
    /// will not build, reporting every problem at once.
    pub fn detector_plans(
        &self,
        factories: &[&dyn DetectorFactory],
    ) -> Result<Vec<DetectorPlan>, ConfigError> {
        let mut problems = Problems::new(&self.origins);
        let by_id: BTreeMap<&str, &dyn DetectorFactory> =
            factories.iter().map(|f| (f.id(), *f)).collect();
        let known = by_id.keys().copied().collect::<Vec<_>>().join(", ");
        let unknown = |path: &str, id: &str, problems: &mut Problems<'_>| {
            if !by_id.contains_key(id) {
                problems.push(
                    &join_key(path, id),
                    format!("no detector `{id}`; known: {known}"),
                );
            }
        };
        for id in self.detectors.tables.keys() {
            unknown("detectors", id, &mut problems);
        }
        for (env, overlay) in &self.detectors.overlays {
            let path = join_key(&join_key("environments", env), "detectors");
            for id in overlay.keys() {
                unknown(&path, id, &mut problems);
            }
        }

        let mut plans = Vec::with_capacity(factories.len());
        for factory in factories {
            let id = factory.id();
            let (base, inherited) = self.base_settings(*factory);
            let base_error = factory.build(&base.params).err().map(|e| e.to_string());
            if let Some(error) = &base_error {
                problems.push(
                    &join_key("detectors", id),
                    with_inherited(error, &inherited),
                );
            }
            for (env, overlay) in &self.detectors.overlays {
                let Some(over) = overlay.get(id) else {
                    continue;
                };
                let merged = base.overlaid(over);
                if let Err(e) = factory.build(&merged.params) {
                    let error = e.to_string();
                    // The base's failure, unchanged by the overlay, is reported once.
                    if base_error.as_ref() != Some(&error) {
                        let path =
                            join_key(&join_key(&join_key("environments", env), "detectors"), id);
                        problems.push(&path, with_inherited(&error, &inherited));
                    }
                }
            }
            let active = match self.detectors.overlays.get(&self.daemon.environment) {
                Some(overlay) => overlay.get(id).map_or(base.clone(), |o| base.overlaid(o)),
                None => base,
            };
            plans.push(DetectorPlan {
                id: id.to_owned(),
                enabled: active
                    .enabled
                    .unwrap_or_else(|| factory.enabled_by_default()),
                services: active.services.unwrap_or_default(),
                exclude_services: active.exclude_services.unwrap_or_default(),
                params: active.params,
            });
        }
        if problems.list.is_empty() {
            Ok(plans)
        } else {
            Err(ConfigError::Invalid(problems.list))
        }
    }

    /// The detector's own table with the `[detection]` keys it inherits
    /// filled in, and which keys were inherited (for error messages).
    fn base_settings(&self, factory: &dyn DetectorFactory) -> (DetectorSettings, Vec<String>) {
        let mut base = self
            .detectors
            .tables
            .get(factory.id())
            .cloned()
            .unwrap_or_default();
        let mut inherited = Vec::new();
        for key in factory.inherited_keys() {
            let Some(value) = self.detection.get(key.detection_key) else {
                continue;
            };
            if !base.params.contains_key(key.key) {
                base.params.insert(key.key.to_owned(), value.clone());
                inherited.push(format!(
                    "`{}` = {} from `detection.{}`",
                    key.key,
                    describe_short(value),
                    key.detection_key
                ));
            }
        }
        (base, inherited)
    }
}

/// A build error that may stem from a `[detection]` value says so, since the
/// detector's table alone would not explain it.
fn with_inherited(error: &str, inherited: &[String]) -> String {
    if inherited.is_empty() {
        error.to_owned()
    } else {
        format!("{error} (inherited: {})", inherited.join(", "))
    }
}

fn describe_short(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        other => describe(other),
    }
}
