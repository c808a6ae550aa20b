//! SQL normalization: literal ranges lie inside the (capped) statement on
//! char boundaries, and a template normalizes to itself with no literals.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_sentinel::normalize::{MAX_SQL_INPUT, normalize_sql};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let mut template = String::new();
    let mut params = Vec::new();
    let n = normalize_sql(sql, &mut template, &mut params);
    assert_eq!(n.truncated, sql.len() > MAX_SQL_INPUT);
    for r in &params {
        assert!(
            r.start <= r.end && r.end <= sql.len().min(MAX_SQL_INPUT),
            "{r:?}"
        );
        assert!(sql.get(r.clone()).is_some(), "{r:?} splits a char");
    }
    if !n.truncated {
        let mut again = String::new();
        let mut again_params = Vec::new();
        normalize_sql(&template, &mut again, &mut again_params);
        assert_eq!(again, template, "a template normalizes to itself");
        assert!(
            again_params.is_empty(),
            "a template has no literals: {again_params:?}"
        );
    }
});
