//! The registry of built-in detectors, filled at link time with `inventory`.
//! A crate registers a factory with [`register_builtin!`](crate::register_builtin);
//! the host reads [`builtin_factories`].

use crate::DetectorFactory;

/// One built-in detector registration.
pub struct BuiltinDetector {
    /// The factory.
    pub factory: &'static dyn DetectorFactory,
}

impl BuiltinDetector {
    /// Wraps a factory for `inventory::submit!`.
    pub const fn new(factory: &'static dyn DetectorFactory) -> Self {
        Self { factory }
    }
}

inventory::collect!(BuiltinDetector);

/// Every registered built-in factory, sorted by id (inventory has no order).
pub fn builtin_factories() -> Vec<&'static dyn DetectorFactory> {
    let mut all: Vec<_> = inventory::iter::<BuiltinDetector>
        .into_iter()
        .map(|b| b.factory)
        .collect();
    all.sort_by(|a, b| a.id().cmp(b.id()));
    all
}

/// Registers a built-in detector factory (a `static` or a unit struct value).
///
/// ```ignore
/// detector_api::register_builtin!(NPlusOneSqlFactory);
/// ```
#[macro_export]
macro_rules! register_builtin {
    ($factory:expr) => {
        $crate::inventory::submit! {
            $crate::BuiltinDetector::new(&$factory)
        }
    };
}
