//! Third-party detector plugins: loading `.so`/`.dylib` files named by
//! `[plugins] paths`, checking they are perf-sentinel plugins of a compatible
//! API, and turning their factories into native [`DetectorFactory`]s so the
//! registry and pipeline never see the difference.
//!
//! [`DetectorFactory`]: detector_api::DetectorFactory

mod adapter;
mod loader;

pub use adapter::PluginFactory;
pub use loader::{LoadedPlugin, PluginError, load_path, plugin_files};
