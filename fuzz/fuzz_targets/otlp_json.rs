//! An OTLP/JSON body through both readers: the receivers' `decode_json`
//! (opentelemetry-proto's serde) and `analyze`'s fast reader
//! (`batch::otlp_json::request`), then the shared conversion. The fast
//! reader is the more lenient one (non-hex ids become invalid ids, events
//! and links are skipped), so whatever the receiver accepts it must accept
//! and convert the same way. Two known differences are let through:
//! `analyze` wants the `resourceSpans` key on every request line where the
//! receiver takes `{}`, and the receiver's serde decoder also takes a JSON
//! array for an object (serde's positional form of a struct, which OTLP/JSON
//! does not define), which `analyze` refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use perf_sentinel::batch::otlp_json;
use perf_sentinel::ingest::convert::{ConvertLimits, convert};
use perf_sentinel::ingest::decode_json;

fuzz_target!(|body: &[u8]| {
    let limits = ConvertLimits::default();
    let received = decode_json(body).map(|r| convert(&r, 1, &limits));
    let batch = otlp_json::request(body)
        .map(|resource_spans| convert(&ExportTraceServiceRequest { resource_spans }, 1, &limits));
    match (received, batch) {
        (Ok(received), Ok(batch)) => {
            assert_eq!(received, batch, "receiver and analyze convert differently");
        }
        (Ok(received), Err(e)) => {
            let e = e.to_string();
            let no_items = received.accepted + received.rejected_invalid_id == 0
                && e.contains("no `resourceSpans`");
            let positional = e.contains("invalid type: sequence");
            assert!(
                no_items || positional,
                "analyze refused JSON the receiver accepts: {e}"
            );
        }
        (Err(_), _) => {}
    }
});
