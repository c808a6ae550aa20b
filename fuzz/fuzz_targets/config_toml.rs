//! The configuration loader: TOML text to a validated `Config`, its comfort
//! warnings, and its `[detectors]` and `[environments]` tables resolved
//! against every built-in detector and the `error-spike` example plugin
//! (each detector's own config parser runs here). One plugin per binary:
//! each exports the same ABI root symbol.
#![no_main]

use detector_api::DetectorFactory;
use libfuzzer_sys::fuzz_target;
use perf_sentinel::config::from_toml_str;
use perf_sentinel_plugin_error_spike::ErrorSpikeFactory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = from_toml_str(text, "fuzz.toml") else {
        return;
    };
    let _ = config.comfort_warnings();
    perf_sentinel_detectors::link();
    let mut factories: Vec<&dyn DetectorFactory> = detector_api::builtin_factories();
    factories.push(&ErrorSpikeFactory);
    let _ = config.detector_plans(&factories);
});
