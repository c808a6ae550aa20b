//! The host's context handed to a plugin: a plugin has its own copy of every
//! global (std, tracing), so its logs reach the host's only through this
//! callback.

use std::sync::OnceLock;

use abi_stable::StableAbi;
use abi_stable::std_types::RStr;

/// Severity of a plugin log line.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Something is wrong.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Worth knowing.
    Info = 2,
    /// For debugging.
    Debug = 3,
}

/// What the host gives a plugin when loading it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct PluginContext {
    /// Writes one log line through the host's logger.
    pub log: extern "C" fn(LogLevel, RStr<'_>),
}

// Each plugin links its own copy of this crate, so this static is per plugin.
static CONTEXT: OnceLock<PluginContext> = OnceLock::new();

#[doc(hidden)]
pub extern "C" fn init_context(context: PluginContext) {
    let _ = CONTEXT.set(context);
}

/// Logs through the host (a no-op before the host initialized the plugin, and
/// in built-in detectors, which should not log at all).
pub fn log(level: LogLevel, message: &str) {
    if let Some(c) = CONTEXT.get() {
        (c.log)(level, RStr::from_str(message));
    }
}
