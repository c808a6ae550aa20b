//! Host-side adapters: a plugin's FFI factory and detectors seen through the
//! native traits.

use std::sync::Arc;

use detector_api::abi::{FfiDetectorBox, FfiFactoryBox};
use detector_api::{
    BuildError, Detector, DetectorError, DetectorFactory, Finding, RVec, TraceView,
};

use super::LoadedPlugin;

/// A factory exported by a plugin, with the facts it reported at load time.
pub struct PluginFactory {
    ffi: FfiFactoryBox,
    id: String,
    description: String,
    enabled_by_default: bool,
    cross_trace: bool,
    default_config: toml::Table,
    /// The plugin it came from.
    pub plugin: Arc<LoadedPlugin>,
}

impl PluginFactory {
    /// Reads the factory's identity once; every later call goes through FFI
    /// only to build detectors.
    pub(crate) fn new(ffi: FfiFactoryBox, plugin: Arc<LoadedPlugin>) -> Self {
        let default_config = ffi
            .default_config()
            .as_str()
            .parse::<toml::Table>()
            .unwrap_or_default();
        Self {
            id: ffi.id().into_string(),
            description: ffi.description().into_string(),
            enabled_by_default: ffi.enabled_by_default(),
            cross_trace: ffi.cross_trace(),
            default_config,
            ffi,
            plugin,
        }
    }
}

impl DetectorFactory for PluginFactory {
    fn id(&self) -> &str {
        &self.id
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn enabled_by_default(&self) -> bool {
        self.enabled_by_default
    }
    fn cross_trace(&self) -> bool {
        self.cross_trace
    }
    fn default_config(&self) -> toml::Table {
        self.default_config.clone()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        let text = toml::to_string(config)
            .map_err(|e| BuildError::Config(format!("cannot pass the table to the plugin: {e}")))?;
        match self.ffi.build(text.as_str().into()).into_result() {
            Ok(ffi) => Ok(Box::new(PluginDetector { ffi })),
            Err(message) => Err(BuildError::Config(message.into_string())),
        }
    }
}

/// A plugin's detector. Its panics were caught on the plugin side and come
/// back as errors.
struct PluginDetector {
    ffi: FfiDetectorBox,
}

impl Detector for PluginDetector {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        self.ffi.detect(trace, out).into_result()
    }

    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> Result<(), DetectorError> {
        self.ffi.flush(now_ns, out).into_result()
    }
}
