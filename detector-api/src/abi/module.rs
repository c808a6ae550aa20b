//! The ABI types: the plugin's root module (a prefix type, so fields can be
//! added after the last prefix field without breaking old plugins) and the
//! FFI-safe mirrors of the detector traits.

use abi_stable::StableAbi;
use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};

use super::PluginContext;
use crate::{DetectorError, Finding, TraceView};

/// The FFI mirror of [`Detector`](crate::Detector).
#[sabi_trait]
pub trait FfiDetector: Send {
    /// See [`Detector::detect`](crate::Detector::detect).
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> RResult<(), DetectorError>;

    /// See [`Detector::flush`](crate::Detector::flush).
    #[sabi(last_prefix_field)]
    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> RResult<(), DetectorError>;
}

/// A boxed FFI detector, as a plugin hands it out.
pub type FfiDetectorBox = FfiDetector_TO<'static, RBox<()>>;

/// The FFI mirror of [`DetectorFactory`](crate::DetectorFactory). The
/// detector's TOML table crosses as TOML text.
#[sabi_trait]
pub trait FfiFactory: Send + Sync {
    /// See [`DetectorFactory::id`](crate::DetectorFactory::id).
    fn id(&self) -> RString;
    /// See [`DetectorFactory::description`](crate::DetectorFactory::description).
    fn description(&self) -> RString;
    /// See [`DetectorFactory::enabled_by_default`](crate::DetectorFactory::enabled_by_default).
    fn enabled_by_default(&self) -> bool;
    /// See [`DetectorFactory::cross_trace`](crate::DetectorFactory::cross_trace).
    fn cross_trace(&self) -> bool;
    /// [`DetectorFactory::default_config`](crate::DetectorFactory::default_config)
    /// as TOML text.
    fn default_config(&self) -> RString;
    /// Builds a detector from its table written as TOML text; the error is
    /// the message to show the user.
    #[sabi(last_prefix_field)]
    fn build(&self, config_toml: RStr<'_>) -> RResult<FfiDetectorBox, RString>;
}

/// A boxed FFI factory.
pub type FfiFactoryBox = FfiFactory_TO<'static, RBox<()>>;

/// The name every perf-sentinel plugin's root module carries.
pub const PLUGIN_MODULE_NAME: &str = "perf_sentinel_detector_plugin";

/// A plugin's root module, exported by [`export_detectors!`](crate::export_detectors).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The plugin's crate name.
    pub plugin_name: RStr<'static>,
    /// The plugin's crate version.
    pub plugin_version: RStr<'static>,
    /// [`API_VERSION`](crate::API_VERSION) the plugin was built against.
    pub api_version: u32,
    /// Whether the plugin was built with `panic = "unwind"`; one built with
    /// `abort` cannot catch its panics and is refused.
    pub panic_unwind: bool,
    /// Hands the plugin the host's context (its log callback). Called once,
    /// before anything else.
    pub init: extern "C" fn(PluginContext),
    /// The plugin's factories.
    #[sabi(last_prefix_field)]
    pub factories: extern "C" fn() -> RVec<FfiFactoryBox>,
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "perf_sentinel_plugin";
    const NAME: &'static str = PLUGIN_MODULE_NAME;
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}
