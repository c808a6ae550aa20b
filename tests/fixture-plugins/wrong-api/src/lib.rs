//! A plugin that claims a detector API version this perf-sentinel does not
//! speak, as one built against another release would.

use detector_api::{
    BuildError, Detector, DetectorError, DetectorFactory, Finding, RVec, TraceView,
};

struct Nothing;

impl Detector for Nothing {
    fn detect(&mut self, _: &TraceView<'_>, _: &mut RVec<Finding>) -> Result<(), DetectorError> {
        Ok(())
    }
}

/// Factory of `wrong_api_detector`.
pub struct WrongApi;

impl DetectorFactory for WrongApi {
    fn id(&self) -> &str {
        "wrong_api_detector"
    }
    fn description(&self) -> &str {
        "Never loads."
    }
    fn build(&self, _: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(Nothing))
    }
}

detector_api::export_detectors!(@api 999; WrongApi);
