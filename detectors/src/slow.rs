//! Slow calls: SQL statements, outbound HTTP calls and message sends that take
//! longer than a threshold, reported per trace when one trace repeats them, and
//! across traces when the nearest-rank p99 of a template over a rolling window
//! stays above the threshold in several traces.
//!
//! The three detectors are cross-trace (`DetectorFactory::cross_trace`): the
//! host runs one instance that sees every trace through `detect`, which both
//! reports per-trace findings and records each call's duration; `flush`
//! reports the percentiles. Every bound on the recorded samples is a config key
//! or a constant in `window` or `store`, so memory stays bounded whatever the
//! input.
//!
//! Layout: `detector` drives both halves, `per_trace` and `cross_trace` build
//! their findings, `window`, `store` and `recency` hold the cross-trace
//! samples, `config` and `flavour` say what to look for, `helpers` is shared.

mod config;
mod cross_trace;
mod detector;
mod flavour;
mod helpers;
mod per_trace;
mod recency;
mod store;
mod window;

use detector_api::{
    BuildError, Detector, DetectorFactory, InheritedKey, defaults_table, parse_config,
    register_builtin,
};

use config::INHERITED;
pub use config::SlowConfig;
use detector::Slow;
use flavour::{HTTP, MESSAGING, SQL};

/// Factory of the `slow_sql` detector.
pub struct SlowSql;

/// Factory of the `slow_http` detector.
pub struct SlowHttp;

/// Factory of the `slow_messaging` detector.
pub struct SlowMessaging;

macro_rules! slow_factory {
    ($factory:ident, $flavour:ident, $id:literal, $description:literal) => {
        impl DetectorFactory for $factory {
            fn id(&self) -> &str {
                $id
            }
            fn description(&self) -> &str {
                $description
            }
            fn cross_trace(&self) -> bool {
                true
            }
            fn inherited_keys(&self) -> &[InheritedKey] {
                INHERITED
            }
            fn default_config(&self) -> toml::Table {
                defaults_table::<SlowConfig>()
            }
            fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
                Ok(Box::new(Slow::new(&$flavour, parse_config(config)?)))
            }
        }

        register_builtin!($factory);
    };
}

slow_factory!(
    SlowSql,
    SQL,
    "slow_sql",
    "SQL statements slower than a threshold, repeated in one trace or with a p99 above it across traces."
);
slow_factory!(
    SlowHttp,
    HTTP,
    "slow_http",
    "Outbound HTTP calls slower than a threshold, repeated in one trace or with a p99 above it across traces."
);
slow_factory!(
    SlowMessaging,
    MESSAGING,
    "slow_messaging",
    "Message sends (producer spans) slower than a threshold, repeated in one trace or with a p99 above it across traces."
);

#[cfg(test)]
mod tests;
