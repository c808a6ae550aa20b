//! A plugin's configuration as it crosses the FFI boundary: the host writes
//! the detector's TOML table as text, the plugin side (`FactoryAdapter`)
//! parses it back and builds the detector through its typed config. Run for
//! the `select-star` example plugin, in process, without loading a shared
//! library (`config_toml` covers `error-spike`: each plugin exports the same
//! ABI root symbol, so one binary links one).
#![no_main]

use detector_api::abi::{FactoryAdapter, FfiFactory};
use libfuzzer_sys::fuzz_target;
use perf_sentinel_plugin_select_star::SelectStarFactory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The plugin side reads whatever text arrives.
    let _ = FactoryAdapter(SelectStarFactory).build(text.into());
    // The host side: a table from the config file, written as the adapter
    // writes it, must parse back to the same table.
    let Ok(table) = text.parse::<toml::Table>() else {
        return;
    };
    // The host maps a table it cannot write to a configuration error.
    let Ok(written) = toml::to_string(&table) else {
        return;
    };
    let back: toml::Table = written.parse().expect("the written table parses");
    // Compared as text: NaN never equals itself as a value.
    assert_eq!(
        toml::to_string(&back).ok().as_deref(),
        Some(written.as_str()),
        "the table survives the crossing"
    );
    let _ = FactoryAdapter(SelectStarFactory).build(written.as_str().into());
});
