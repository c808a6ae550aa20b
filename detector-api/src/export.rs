//! [`export_detectors!`]: the one line a plugin author writes.

/// Exports a plugin's detector factories as a perf-sentinel plugin.
///
/// The plugin crate is a `cdylib` that depends on this crate and on
/// `abi_stable`, is built with `panic = "unwind"`, and lists its factories
/// (values of types implementing [`DetectorFactory`](crate::DetectorFactory)):
///
/// ```ignore
/// detector_api::export_detectors![SelectStarFactory, ErrorSpikeFactory];
/// ```
#[macro_export]
macro_rules! export_detectors {
    ($($factory:expr),+ $(,)?) => {
        $crate::export_detectors!(@api $crate::API_VERSION; $($factory),+);
    };
    // Test fixtures only: claim another API version.
    (@api $api:expr; $($factory:expr),+ $(,)?) => {
        #[$crate::abi::abi_stable::export_root_module]
        pub fn perf_sentinel_plugin_root() -> $crate::abi::PluginModuleRef {
            extern "C" fn factories() -> $crate::RVec<$crate::abi::FfiFactoryBox> {
                let mut out = $crate::RVec::new();
                $(
                    out.push($crate::abi::FfiFactory_TO::from_value(
                        $crate::abi::FactoryAdapter($factory),
                        $crate::abi::abi_stable::sabi_trait::TD_Opaque,
                    ));
                )+
                out
            }
            use $crate::abi::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::abi::PluginModule {
                plugin_name: $crate::RStr::from_str(env!("CARGO_PKG_NAME")),
                plugin_version: $crate::RStr::from_str(env!("CARGO_PKG_VERSION")),
                api_version: $api,
                panic_unwind: cfg!(panic = "unwind"),
                init: $crate::abi::init_context,
                factories,
            }
            .leak_into_prefix()
        }
    };
}
