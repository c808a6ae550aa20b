//! The built-in detectors of perf-sentinel. Pure code: each module looks at a
//! [`TraceView`](detector_api::TraceView) and returns findings, with no I/O,
//! threads or clocks. Each registers itself with
//! [`register_builtin!`](detector_api::register_builtin); the host links this
//! crate by name so the registrations survive linking.

mod chatty;
mod common;
mod fanout;
mod frameworks;
mod io_waste;
mod n_plus_one;
mod pool;
mod redundant;
mod serialized;
mod slow;

pub use n_plus_one::{NPlusOneConfig, NPlusOneHttp, NPlusOneSql};

/// Names this crate so the linker keeps its `inventory` registrations; the
/// host calls it once at startup.
pub fn link() {}
