//! perf-sentinel's host: ingest, trace window, analysis pipeline, findings,
//! metrics, API and configuration. The binary (`main.rs`) is a thin CLI over
//! this library, which also serves the benches and tests.

#![forbid(unsafe_code)]

pub mod acks;
pub mod api;
pub mod batch;
pub mod client;
pub mod config;
pub mod correlation;
pub mod daemon;
pub mod findings;
pub mod green;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod net;
pub mod normalize;
pub mod pipeline;
pub mod plugins;
pub mod registry;
pub mod window;
