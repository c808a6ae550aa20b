//! Findings after detection: stamped records with their JSON form, the
//! bounded store the API reads, and the single writer that feeds the store,
//! the metrics and stdout.

mod fold;
mod record;
mod sink;
mod store;

pub use fold::{Folded, fold, push_folded};
pub use record::{FindingRecord, Stamp, confidence_for, io_intensity, rfc3339};
pub use sink::{FindingsSink, SharedCorrelator, SinkThreads, spawn_sink};
pub use store::{FindingFilter, FindingsStore};
