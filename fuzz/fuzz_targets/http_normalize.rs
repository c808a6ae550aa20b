//! HTTP normalization of a method and URL (split at the input's first
//! newline): id and query ranges lie inside the (capped) URL on char
//! boundaries, and userinfo never reaches the template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_sentinel::normalize::http::MAX_HTTP_URL;
use perf_sentinel::normalize::normalize_http;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, url) = text.split_once('\n').unwrap_or(("GET", text));
    let mut template = String::new();
    let mut params = Vec::new();
    let n = normalize_http(method, url, &mut template, &mut params);
    assert_eq!(n.truncated, url.len() > MAX_HTTP_URL || method.len() > 16);
    for r in &params {
        assert!(
            r.start <= r.end && r.end <= url.len().min(MAX_HTTP_URL),
            "{r:?}"
        );
        assert!(url.get(r.clone()).is_some(), "{r:?} splits a char");
    }
});
