//! A shared library that is not a perf-sentinel plugin: it exports a C
//! function and no abi_stable root module.

/// Adds two numbers.
#[no_mangle]
pub extern "C" fn fixture_add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}
