//! An OTLP/protobuf request body through the receivers' zero-copy walker
//! (`convert_wire`, what `Ingestor::ingest_protobuf` runs before admission),
//! checked against prost: whatever prost decodes, the walker must read and
//! convert to the same fragments. One refusal is by design: the walker
//! bounds nesting (attribute values, groups) at 32 levels, prost at 100.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use perf_sentinel::ingest::convert::{ConvertLimits, convert, convert_wire};
use perf_sentinel::ingest::wire::WireError;
use prost::Message;

fuzz_target!(|body: &[u8]| {
    let limits = ConvertLimits::default();
    let walked = convert_wire(body, 2, &limits);
    if let Ok(decoded) = ExportTraceServiceRequest::decode(body) {
        match walked {
            Ok(walked) => assert_eq!(
                walked,
                convert(&decoded, 2, &limits),
                "walker and prost differ"
            ),
            Err(WireError::TooDeep { .. }) => {}
            Err(e) => panic!("the walker refused a body prost decodes: {e:?}"),
        }
    }
});
