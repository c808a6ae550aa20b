//! GreenOps: turns I/O into energy and CO2. A proxy model per operation
//! ([`model`]), grid intensity and PUE per region ([`regions`]), scoring of
//! findings and traces ([`score`]), and the energy scrapers ([`scrape`])
//! whose measurements replace the proxy while fresh ([`state`]).

pub mod calibration;
pub mod instances;
pub mod model;
pub mod regions;
pub mod score;
pub mod scrape;
pub mod state;

pub use calibration::Calibration;
pub use score::{GreenImpact, GreenScorer, HIGH_FACTOR, LOW_FACTOR, TraceEnergy};
pub use state::EnergyState;
