//! A Zipkin v2 JSON body (`POST /api/v2/spans`) through its mapping to OTLP
//! and the conversion to trace fragments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_sentinel::ingest::convert::{ConvertLimits, convert};
use perf_sentinel::ingest::zipkin;

fuzz_target!(|body: &[u8]| {
    if let Ok(request) = zipkin::decode(body) {
        let converted = convert(&request, 2, &ConvertLimits::default());
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        assert_eq!(
            converted.accepted + converted.rejected_invalid_id + converted.sampled_out,
            spans,
            "every mapped span is accepted, refused or sampled out"
        );
    }
});
