//! Test support for detector authors (feature `testkit`): a trace builder that
//! owns its strings and hands out a real [`TraceView`], and the conformance
//! check every detector, built-in or plugin, must pass.

mod builder;
mod conformance;

pub use builder::{SpanSpec, T0_NS, TraceBuilder, params_hash};
pub use conformance::{check_conformance, sample_traces};
