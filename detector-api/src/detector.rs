//! The native detector traits: what a built-in or plugin detector implements,
//! and the typed-config helper that turns its TOML table into a validated
//! struct.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{RString, RVec};
use serde::de::DeserializeOwned;

use crate::{Finding, TraceView};

/// A failure while a detector ran. The host counts it against the detector
/// and quarantines a detector that keeps failing; the daemon keeps running.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct DetectorError {
    /// What went wrong.
    pub message: RString,
    /// The detector panicked (caught on its side of the plugin boundary); the
    /// host never calls that instance again.
    pub panicked: bool,
}

impl DetectorError {
    /// An error with `message`.
    pub fn new(message: impl Into<RString>) -> Self {
        Self {
            message: message.into(),
            panicked: false,
        }
    }

    /// A caught panic with `message`.
    pub fn panic(message: impl Into<RString>) -> Self {
        Self {
            message: message.into(),
            panicked: true,
        }
    }
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DetectorError {}

/// A detector's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The table did not deserialize: unknown key, wrong type. The message
    /// names the key.
    #[error("{0}")]
    Config(String),
    /// A key holds a value out of its range.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key at fault.
        key: String,
        /// Why the value is refused.
        reason: String,
    },
}

impl BuildError {
    /// A value of `key` is refused for `reason`.
    pub fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Something that looks at a whole trace and reports findings.
///
/// The host owns all I/O, threads and time: a detector never blocks, sleeps,
/// spawns or prints. It may keep state between traces (one instance per
/// analysis shard); it never stamps environment or confidence.
pub trait Detector: Send {
    /// Examines one complete trace, appending findings to `out`. Called once
    /// per trace.
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError>;

    /// For cross-trace detectors: reports what accumulated across traces.
    /// Called on a periodic tick and once at shutdown; `now_ns` is the wall
    /// clock in nanoseconds since the Unix epoch.
    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> Result<(), DetectorError> {
        let _ = (now_ns, out);
        Ok(())
    }
}

/// A key a built-in detector takes a default from in the shared
/// `[detection]` section, e.g. `n_plus_one_min_occurrences` for
/// `min_occurrences`. The detector's own `[detectors.<id>]` table wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InheritedKey {
    /// Key in `[detection]`.
    pub detection_key: &'static str,
    /// Key in the detector's table.
    pub key: &'static str,
}

/// Makes detectors of one kind from their configuration.
pub trait DetectorFactory: Send + Sync {
    /// The detector id, lower_snake_case, unique across built-ins and plugins.
    fn id(&self) -> &str;

    /// One sentence saying what the detector finds.
    fn description(&self) -> &str;

    /// Whether it runs when the configuration does not mention it.
    fn enabled_by_default(&self) -> bool {
        true
    }

    /// True when the detector keeps statistics across traces (percentiles
    /// over a rolling window, correlations). The host then runs one instance
    /// that sees every trace, whatever the number of analysis shards; other
    /// detectors get one instance per shard.
    fn cross_trace(&self) -> bool {
        false
    }

    /// Keys it inherits from `[detection]` (built-ins only).
    fn inherited_keys(&self) -> &[InheritedKey] {
        &[]
    }

    /// The detector's own keys with their default values, for listings and
    /// documentation (`perf-sentinel detectors`). Optional keys without a
    /// default are left out. See [`defaults_table`].
    fn default_config(&self) -> toml::Table {
        toml::Table::new()
    }

    /// Builds a detector from its configuration table: the detector's own
    /// keys only (the host strips `enabled`, `services` and
    /// `exclude_services`). An empty table means all defaults.
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError>;
}

/// A detector's typed configuration: a `#[serde(default,
/// deny_unknown_fields)]` struct plus range checks.
///
/// ```
/// use detector_api::{BuildError, DetectorConfig, parse_config};
///
/// #[derive(serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct MyConfig { min_occurrences: u32 }
/// impl Default for MyConfig { fn default() -> Self { Self { min_occurrences: 5 } } }
/// impl DetectorConfig for MyConfig {
///     fn validate(&self) -> Result<(), BuildError> {
///         if self.min_occurrences < 2 {
///             return Err(BuildError::invalid("min_occurrences", "must be at least 2"));
///         }
///         Ok(())
///     }
/// }
///
/// let table: toml::Table = "min_occurrences = 3".parse().unwrap();
/// let cfg: MyConfig = parse_config(&table).unwrap();
/// assert_eq!(cfg.min_occurrences, 3);
/// let bad: toml::Table = "min_ocurrences = 3".parse().unwrap();
/// assert!(parse_config::<MyConfig>(&bad).is_err());
/// ```
pub trait DetectorConfig: DeserializeOwned {
    /// Checks ranges and relations between keys.
    fn validate(&self) -> Result<(), BuildError> {
        Ok(())
    }
}

/// A typed configuration's defaults as a TOML table, for
/// [`DetectorFactory::default_config`].
pub fn defaults_table<T: Default + serde::Serialize>() -> toml::Table {
    toml::Table::try_from(T::default()).unwrap_or_default()
}

/// Deserializes and validates a detector's table.
pub fn parse_config<T: DetectorConfig>(table: &toml::Table) -> Result<T, BuildError> {
    let value = toml::Value::Table(table.clone());
    let config = T::deserialize(value).map_err(|e| BuildError::Config(one_line(&e.to_string())))?;
    config.validate()?;
    Ok(config)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
