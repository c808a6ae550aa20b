//! Plugin-side adapters from the native traits to their FFI mirrors. Every
//! call runs inside `catch_unwind`; a detector that panicked is never called
//! again (it answers with an error until the host rebuilds it).

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString, RVec};

use super::module::{FfiDetector, FfiDetector_TO, FfiDetectorBox, FfiFactory};
use crate::{Detector, DetectorError, DetectorFactory, Finding, TraceView};

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Wraps a native detector for the FFI.
pub struct DetectorAdapter {
    inner: Box<dyn Detector>,
    poisoned: bool,
}

impl DetectorAdapter {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Detector>) -> Self {
        Self {
            inner,
            poisoned: false,
        }
    }

    fn guarded(
        &mut self,
        what: &str,
        call: impl FnOnce(&mut dyn Detector) -> Result<(), DetectorError>,
    ) -> RResult<(), DetectorError> {
        if self.poisoned {
            return RResult::RErr(DetectorError::panic(
                "detector panicked earlier and was not rebuilt",
            ));
        }
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| call(inner.as_mut()))) {
            Ok(r) => r.into(),
            Err(payload) => {
                self.poisoned = true;
                RResult::RErr(DetectorError::panic(format!(
                    "panicked in {what}: {}",
                    panic_message(payload.as_ref())
                )))
            }
        }
    }
}

impl FfiDetector for DetectorAdapter {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> RResult<(), DetectorError> {
        let start = out.len();
        let r = self.guarded("detect", |d| d.detect(trace, out));
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> RResult<(), DetectorError> {
        let start = out.len();
        let r = self.guarded("flush", |d| d.flush(now_ns, out));
        if r.is_err() {
            out.truncate(start);
        }
        r
    }
}

/// Wraps a native factory for the FFI.
pub struct FactoryAdapter<F>(pub F);

fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, RString> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| format!("panicked in {what}: {}", panic_message(p.as_ref())).into())
}

impl<F: DetectorFactory> FfiFactory for FactoryAdapter<F> {
    fn id(&self) -> RString {
        guard("id", || self.0.id().into()).unwrap_or_default()
    }

    fn description(&self) -> RString {
        guard("description", || self.0.description().into()).unwrap_or_default()
    }

    fn enabled_by_default(&self) -> bool {
        guard("enabled_by_default", || self.0.enabled_by_default()).unwrap_or(false)
    }

    fn cross_trace(&self) -> bool {
        guard("cross_trace", || self.0.cross_trace()).unwrap_or(false)
    }

    fn default_config(&self) -> RString {
        guard("default_config", || {
            toml::to_string(&self.0.default_config()).unwrap_or_default()
        })
        .map(RString::from)
        .unwrap_or_default()
    }

    fn build(&self, config_toml: RStr<'_>) -> RResult<FfiDetectorBox, RString> {
        let built = guard("build", || {
            let table: toml::Table = config_toml
                .as_str()
                .parse()
                .map_err(|e| format!("configuration is not valid TOML: {e}"))?;
            self.0.build(&table).map_err(|e| e.to_string())
        });
        match built {
            Ok(Ok(detector)) => RResult::ROk(FfiDetector_TO::from_value(
                DetectorAdapter::new(detector),
                TD_Opaque,
            )),
            Ok(Err(message)) => RResult::RErr(message.into()),
            Err(panicked) => RResult::RErr(panicked),
        }
    }
}
