//! One chunk of elements (see [`super::split`]) to trace fragments: each
//! element parsed by serde from its slice into the OTLP types (Jaeger and
//! Zipkin through their mappings), then the daemon's own conversion.
//! A parse error names the element's place in the input.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::error::{InputError, Position};
use super::split::{Chunk, Element, Format};
use super::{jaeger, otlp_json};
use crate::ingest::convert::{ConvertLimits, convert};
use crate::ingest::zipkin;
use crate::model::TraceFragment;

/// What one chunk gave.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One fragment per trace seen in the chunk, in order of appearance.
    pub fragments: Vec<TraceFragment>,
    pub spans: usize,
    pub rejected_invalid_id: usize,
    pub truncated_strings: usize,
    pub dropped_attributes: usize,
}

/// Parses and converts `chunk`.
pub fn decode(
    format: Format,
    chunk: &Chunk,
    limits: &ConvertLimits,
) -> Result<Decoded, InputError> {
    let request = match format {
        Format::Otlp => otlp(chunk)?,
        Format::Jaeger => jaeger(chunk)?,
        Format::Zipkin => {
            // Zipkin's decoder checks UTF-8 over the whole array it is
            // given; checked here first, the message can say where.
            if let Err(e) = std::str::from_utf8(&chunk.bytes) {
                return Err(invalid_utf8(chunk, e.valid_up_to()));
            }
            zipkin(chunk)?
        }
    };
    let converted = convert(&request, 1, limits);
    Ok(Decoded {
        fragments: converted.shards.into_iter().flatten().collect(),
        spans: converted.accepted,
        rejected_invalid_id: converted.rejected_invalid_id,
        truncated_strings: converted.truncated_strings,
        dropped_attributes: converted.dropped_attributes,
    })
}

/// Invalid UTF-8 at byte `at` of the chunk, placed in the input.
fn invalid_utf8(chunk: &Chunk, at: usize) -> InputError {
    let element = chunk
        .elements
        .iter()
        .find(|el| el.range.contains(&at))
        .or(chunk.elements.last());
    let at = element.map_or_else(Position::default, |el| {
        advance(el.at, &chunk.bytes[el.range.start..at.max(el.range.start)])
    });
    InputError::InvalidUtf8 { at }
}

fn otlp(chunk: &Chunk) -> Result<ExportTraceServiceRequest, InputError> {
    let mut resource_spans = Vec::with_capacity(chunk.elements.len());
    for el in &chunk.elements {
        let bytes = &chunk.bytes[el.range.clone()];
        if el.whole {
            let items = otlp_json::request(bytes)
                .map_err(|e| malformed(chunk, el, "OTLP request line", &e))?;
            resource_spans.extend(items);
        } else {
            let rs = otlp_json::resource_spans(bytes)
                .map_err(|e| malformed(chunk, el, "OTLP resourceSpans item", &e))?;
            resource_spans.push(rs);
        }
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

fn jaeger(chunk: &Chunk) -> Result<ExportTraceServiceRequest, InputError> {
    let mut resource_spans = Vec::new();
    for el in &chunk.elements {
        let trace: jaeger::Trace = serde_json::from_slice(&chunk.bytes[el.range.clone()])
            .map_err(|e| malformed(chunk, el, "Jaeger trace", &e))?;
        resource_spans.extend(jaeger::to_resource_spans(trace));
    }
    Ok(ExportTraceServiceRequest { resource_spans })
}

/// Zipkin's own decoder reads an array of spans: the chunk's spans (and the
/// spans of its trace arrays) are joined into one.
fn zipkin(chunk: &Chunk) -> Result<ExportTraceServiceRequest, InputError> {
    let mut joined = Vec::with_capacity(chunk.bytes.len() + 2);
    joined.push(b'[');
    for el in &chunk.elements {
        let inner = spans_of(&chunk.bytes[el.range.clone()]);
        if inner.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if joined.len() > 1 {
            joined.push(b',');
        }
        joined.extend_from_slice(inner);
    }
    joined.push(b']');
    zipkin::decode(&joined).map_err(|whole| {
        // Find the element at fault, to say where it is.
        for el in &chunk.elements {
            let one = [b"[", spans_of(&chunk.bytes[el.range.clone()]), b"]"].concat();
            if let Err(e) = zipkin::decode(&one) {
                return InputError::Malformed {
                    at: el.at,
                    what: "Zipkin span",
                    message: without_position(&e.to_string()),
                };
            }
        }
        InputError::Malformed {
            at: chunk
                .elements
                .first()
                .map_or_else(Position::default, |el| el.at),
            what: "Zipkin span",
            message: without_position(&whole.to_string()),
        }
    })
}

/// A span object as it is; a trace (an array of spans) without its brackets.
fn spans_of(element: &[u8]) -> &[u8] {
    match (element.first(), element.last()) {
        (Some(b'['), Some(b']')) => &element[1..element.len() - 1],
        _ => element,
    }
}

/// A serde error inside `el`, placed in the input; invalid UTF-8 (which
/// serde reports as a bad string) is reported as such.
fn malformed(chunk: &Chunk, el: &Element, what: &'static str, e: &serde_json::Error) -> InputError {
    let bytes = &chunk.bytes[el.range.clone()];
    if let Err(bad) = std::str::from_utf8(bytes) {
        return invalid_utf8(chunk, el.range.start + bad.valid_up_to());
    }
    if e.classify() == serde_json::error::Category::Eof {
        // A line cut short: the file was truncated.
        return InputError::Truncated {
            at: advance(el.at, bytes),
            started: el.at,
        };
    }
    let rel = offset_of(bytes, e.line(), e.column());
    InputError::Malformed {
        at: advance(el.at, &bytes[..rel]),
        what,
        message: without_position(&e.to_string()),
    }
}

/// serde_json ends its messages with ` at line L column C` (within the
/// element): the caller says where it is in the file instead.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The byte offset in `bytes` of 1-based `line` and `column`.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match memchr::memchr(b'\n', &bytes[start..]) {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(bytes.len())
}

/// `at` moved past `skipped`.
fn advance(at: Position, skipped: &[u8]) -> Position {
    let lines = memchr::memchr_iter(b'\n', skipped).count() as u64;
    let column = match memchr::memrchr(b'\n', skipped) {
        Some(last) => (skipped.len() - last) as u64,
        None => at.column + skipped.len() as u64,
    };
    Position {
        offset: at.offset + skipped.len() as u64,
        line: at.line + lines,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::split::Splitter;

    fn chunk(input: &str) -> (Format, Chunk) {
        let mut s = Splitter::new(input.as_bytes(), 1 << 20);
        let c = s.next_chunk().unwrap().unwrap();
        (s.format().unwrap(), c)
    }

    fn run(input: &str) -> Result<Decoded, InputError> {
        let (format, c) = chunk(input);
        decode(format, &c, &ConvertLimits::default())
    }

    const SPAN: &str = r#"{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"q","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"2"}"#;

    #[test]
    fn otlp_items_become_fragments_by_trace() {
        let input = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"api"}}}}]}},"scopeSpans":[{{"spans":[{SPAN},{SPAN}]}}]}}]}}"#
        );
        let d = run(&input).unwrap();
        assert_eq!(d.spans, 2);
        assert_eq!(d.fragments.len(), 1);
        let f = &d.fragments[0];
        assert_eq!(f.arena.get(f.spans[0].service), "api");
    }

    #[test]
    fn a_bad_item_is_placed_in_the_file() {
        let input = "{\"resourceSpans\":[\n{\"scopeSpans\":[]},\n  {\"scopeSpans\":[{\"spans\":[{\"kind\":\"x\"}]}]}]}";
        let e = run(input).err().unwrap().to_string();
        assert!(e.starts_with("has an invalid OTLP resourceSpans item at line 3, column 38 (byte 75): \"x\" is not an integer in range"), "{e}");
        assert!(!e.contains("at line 1 column"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_placed_in_the_file() {
        let mut input =
            b"{\"resourceSpans\":[\n{\"scopeSpans\":[{\"spans\":[{\"name\":\"a".to_vec();
        input.extend([0xff, b'"', b'}', b']', b'}', b']', b'}', b']', b'}']);
        let mut s = Splitter::new(&input[..], 1 << 20);
        let c = s.next_chunk().unwrap().unwrap();
        let e = decode(Format::Otlp, &c, &ConvertLimits::default())
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "is not valid UTF-8 at line 2, column 36 (byte 54)"
        );
    }

    #[test]
    fn ndjson_lines_decode_whole_and_a_cut_line_is_truncation() {
        let line = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN}]}}]}}]}}"#);
        let input = format!("{line}\n{line}\n{line}\n");
        let mut s = Splitter::new(input.as_bytes(), 1 << 20);
        let c = s.next_chunk().unwrap().unwrap();
        assert_eq!(c.elements.iter().filter(|e| e.whole).count(), 2);
        let d = decode(Format::Otlp, &c, &ConvertLimits::default()).unwrap();
        assert_eq!(d.spans, 3);
        let cut = format!("{line}\n{}", &line[..line.len() - 9]);
        let e = run(&cut).err().unwrap().to_string();
        assert!(e.contains("starts at line 2, column 1"), "{e}");
        assert!(e.contains("truncated"), "{e}");
        let e = run(&format!("{line}\n{{\"data\":[]}}\n"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("invalid OTLP request line at line 2"), "{e}");
        assert!(e.contains("no `resourceSpans`"), "{e}");
    }

    #[test]
    fn zipkin_spans_and_trace_arrays_decode_together() {
        let span = |id: &str| {
            format!(
                r#"{{"traceId":"0af7651916cd43dd8448eb211c80319c","id":"{id}","name":"get","timestamp":1,"duration":2,"localEndpoint":{{"serviceName":"web"}}}}"#
            )
        };
        let d = run(&format!(
            "[{},{}]",
            span("b7ad6b7169203331"),
            span("b7ad6b7169203332")
        ))
        .unwrap();
        assert_eq!(d.spans, 2);
        let d = run(&format!(
            "[[{}],[],[{}]]",
            span("b7ad6b7169203331"),
            span("b7ad6b7169203332")
        ))
        .unwrap();
        assert_eq!(d.spans, 2);
        // The decoder is lenient inside a span; a trace holding something
        // else than spans is refused and placed in the file.
        let e = run(&format!("[[{}],\n [7]]", span("b7ad6b7169203331")))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("has an invalid Zipkin span at line 2, column 2"),
            "{e}"
        );
    }

    #[test]
    fn jaeger_traces_decode() {
        let d = run(r#"{"data":[{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[{"spanID":"b7ad6b7169203331","operationName":"x","startTime":1,"duration":1,"processID":"p1"}],"processes":{"p1":{"serviceName":"svc"}}}]}"#).unwrap();
        assert_eq!(d.spans, 1);
        let f = &d.fragments[0];
        assert_eq!(f.arena.get(f.spans[0].service), "svc");
        let e = run(r#"{"data":[{"spans":{"no":1}}]}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("has an invalid Jaeger trace at line 1, column"),
            "{e}"
        );
    }
}
