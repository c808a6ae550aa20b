//! The host's own storage of received spans: every string of a trace lives in
//! one arena buffer and spans refer to it by offset, so a trace costs a few
//! allocations, not one per string, and the detector view borrows it whole.

mod arena;
mod fragment;

pub use arena::floor_char_boundary;
pub use arena::{Arena, StrRef};
pub use fragment::{AttrRef, Kind, Role, SpanRecord, TraceFragment};
