//! The pieces of `otlp-load` (the binary is `src/main.rs`): trace patterns,
//! pre-encoded requests, the two OTLP transports and the report. A library
//! too, so the end-to-end tests send raw gRPC exports through the same
//! client code instead of a copy of it.

pub mod capture;
pub mod patterns;
pub mod probe;
pub mod report;
pub mod send;
pub mod template;
