//! The plugin ABI: what crosses between the perf-sentinel host and a detector
//! plugin (a `cdylib`) through abi_stable. A plugin author writes one line,
//! [`export_detectors!`](crate::export_detectors), over factories that
//! implement the native [`DetectorFactory`](crate::DetectorFactory) trait;
//! the host turns what it loads back into native factories, so built-ins and
//! plugins look the same to everything else.
//!
//! This is the only module of the crate with FFI. Every call into a plugin
//! runs inside `catch_unwind` on the plugin side, so a panic comes back as an
//! error instead of unwinding across the boundary (which would abort).
#![allow(non_local_definitions)]

mod adapters;
mod context;
mod module;

pub use adapters::{DetectorAdapter, FactoryAdapter, panic_message};
pub use context::{LogLevel, PluginContext, init_context, log};
pub use module::{
    FfiDetector, FfiDetector_TO, FfiDetectorBox, FfiFactory, FfiFactory_TO, FfiFactoryBox,
    PLUGIN_MODULE_NAME, PluginModule, PluginModuleRef,
};

#[doc(hidden)]
pub use abi_stable;
