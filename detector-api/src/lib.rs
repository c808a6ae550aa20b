//! The stable detector API of perf-sentinel.
//!
//! Everything a detector sees and returns lives here: the borrowed, ABI-stable
//! [`TraceView`] / [`SpanView`] data model, the owned [`Finding`], and the native
//! [`Detector`] / [`DetectorFactory`] traits that built-in detectors implement
//! and that plugins implement through the same traits. The data model is
//! `#[repr(C)]` + [`StableAbi`](abi_stable::StableAbi) so it crosses a plugin
//! boundary as it is, with no conversion.
#![warn(missing_docs)]

// The FFI layer: abi_stable's macros expand to unsafe code here and only here.
#[allow(unsafe_code)]
pub mod abi;
mod detector;
mod export;
mod finding;
mod ids;
mod registry;
mod span;
mod trace;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use abi_stable::std_types::{RSlice, RStr, RString, RVec};
pub use detector::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, InheritedKey,
    defaults_table, parse_config,
};
pub use finding::{ExtraField, Finding, OwnedCodeLocation, Severity};
pub use ids::{SpanId, TraceId};
pub use registry::{BuiltinDetector, builtin_factories};
pub use span::{Attribute, CodeLocation, IoKind, NO_PARENT, SpanKind, SpanView};
pub use trace::{TraceIndex, TraceView};

/// Re-exported so that `register_builtin!` works without a direct dependency.
#[doc(hidden)]
pub use inventory;

/// The version of the detector API data model and traits.
///
/// Any change to a type that crosses the plugin boundary bumps it; the host
/// refuses a plugin built against another version.
pub const API_VERSION: u32 = 1;
