//! A plugin whose detector panics on every trace that has a span named
//! `boom`, and works otherwise: the host must catch, count, quarantine and
//! keep serving.

use detector_api::{
    BuildError, Detector, DetectorError, DetectorFactory, Finding, RVec, Severity, TraceView,
};

struct Boom;

impl Detector for Boom {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        if trace.spans().iter().any(|s| s.name.as_str() == "boom") {
            panic!("boom span seen");
        }
        if trace.spans().iter().any(|s| s.name.as_str() == "fail") {
            return Err(DetectorError::new("fail span seen"));
        }
        if let Some(root) = trace.spans().iter().find(|s| s.name.as_str() == "ping") {
            out.push(
                Finding::new("fixture.ping", Severity::Info, trace.trace_id())
                    .service(root.service.as_str())
                    .template("ping"),
            );
        }
        Ok(())
    }
}

/// Factory of `panicky`.
pub struct Panicky;

impl DetectorFactory for Panicky {
    fn id(&self) -> &str {
        "panicky"
    }
    fn description(&self) -> &str {
        "Panics on spans named boom (test fixture)."
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        if let Some(k) = config.keys().next() {
            return Err(BuildError::Config(format!("unknown field `{k}`")));
        }
        // A plugin's own logger goes nowhere; the host's callback does not.
        detector_api::abi::log(detector_api::abi::LogLevel::Info, "panicky detector built");
        Ok(Box::new(Boom))
    }
}

detector_api::export_detectors![Panicky];
