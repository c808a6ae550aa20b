//! Energy scrapers, the host's second component kind: one module per
//! backend holding its pure payload parser, polled by [`poller`] on the
//! host's runtime. Each is on when its `[green.<backend>]` section exists.

pub mod cloud;
pub mod electricity_maps;
pub mod fetch;
pub mod health;
pub mod kepler;
pub mod poller;
pub mod prom_text;
pub mod redfish;
pub mod scaphandre;

pub use fetch::{FetchError, Fetcher, redact};
pub use poller::{EnvReader, OpsSource, spawn_scrapers};

/// Every backend, in the order the registry lists them (also their
/// config section and metric prefix).
pub const BACKENDS: &[&str] = &[
    "scaphandre",
    "kepler",
    "redfish",
    "cloud",
    "electricity_maps",
];

/// A payload the parser refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Text(#[from] prom_text::TextError),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("no {0} in the payload")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("payload refused: {0}")]
    Parse(#[from] ParseError),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("the token variable {0} is not set")]
    NoToken(String),
}

impl ScrapeError {
    /// The `reason` label of `_scrape_failed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Fetch(f) => f.reason(),
            ScrapeError::Parse(_) | ScrapeError::NotUtf8 => "parse",
            ScrapeError::NoToken(_) => "no_token",
        }
    }
}
