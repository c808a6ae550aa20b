use std::io::Read;

use super::*;

/// Hands out at most `step` bytes per read, so every state has to survive
/// a buffer boundary.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

struct Split {
    elements: Vec<String>,
    positions: Vec<Position>,
    format: Option<Format>,
    values: u64,
    chunks: usize,
}

fn split_with(input: &str, step: usize, max_element: usize) -> Result<Split, InputError> {
    let mut s = Splitter::new(
        Trickle {
            data: input.as_bytes(),
            step,
        },
        max_element,
    );
    let mut out = Split {
        elements: Vec::new(),
        positions: Vec::new(),
        format: None,
        values: 0,
        chunks: 0,
    };
    while let Some(chunk) = s.next_chunk()? {
        out.chunks += 1;
        for e in &chunk.elements {
            out.elements
                .push(String::from_utf8(chunk.bytes[e.range.clone()].to_vec()).unwrap());
            out.positions.push(e.at);
        }
    }
    out.format = s.format();
    out.values = s.values();
    Ok(out)
}

/// Splits `input` with reads of every size from 1 to 9 bytes and a big
/// one; all must agree.
fn split(input: &str) -> Result<Split, InputError> {
    let whole = split_with(input, 1 << 20, 1 << 20);
    for step in 1..10 {
        match (&whole, split_with(input, step, 1 << 20)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.elements, b.elements, "step {step}");
                assert_eq!(a.positions, b.positions, "step {step}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "step {step}"),
            (a, b) => panic!(
                "step {step} disagrees: {:?} vs {:?}",
                a.as_ref().map(|s| s.elements.clone()),
                b.map(|s| s.elements)
            ),
        }
    }
    whole
}

fn error(input: &str) -> String {
    match split(input) {
        Ok(s) => panic!("accepted: {:?}", s.elements),
        Err(e) => e.to_string(),
    }
}

#[test]
fn otlp_object_yields_each_resource_spans_item_verbatim() {
    let s = split(r#" {"resourceSpans": [ {"a":1}, {"b":"x]}\"{"} ], "other": [1]}"#).unwrap();
    assert_eq!(s.elements, [r#"{"a":1}"#, r#"{"b":"x]}\"{"}"#]);
    assert_eq!(s.format, Some(Format::Otlp));
    assert_eq!(s.values, 1);
    assert_eq!(
        s.positions[0],
        Position {
            offset: 21,
            line: 1,
            column: 22
        }
    );
}

#[test]
fn ndjson_lines_after_a_one_line_request_are_handed_out_whole() {
    let s = split("{\"resourceSpans\":[{\"n\":1}]}\n{\"resourceSpans\":[{\"n\":2},{\"n\":3}]}\n\n  {\"resourceSpans\":[]}")
        .unwrap();
    assert_eq!(
        s.elements,
        [
            r#"{"n":1}"#,
            r#"{"resourceSpans":[{"n":2},{"n":3}]}"#,
            r#"{"resourceSpans":[]}"#
        ]
    );
    assert_eq!(s.values, 3);
    assert_eq!(
        s.positions[1],
        Position {
            offset: 28,
            line: 2,
            column: 1
        }
    );
    assert_eq!(s.positions[2].line, 4);
    assert_eq!(s.positions[2].column, 3);
    // A request over several lines is cut into its items, as is what follows.
    let s = split("{\"resourceSpans\":\n[{\"n\":1}]}\n{\"resourceSpans\":[{\"n\":2}]}").unwrap();
    assert_eq!(s.elements, [r#"{"n":1}"#, r#"{"n":2}"#]);
}

#[test]
fn jaeger_data_items_and_zipkin_array_items_are_elements() {
    let s =
        split(r#"{"total":0,"data":[{"traceID":"a","spans":[{"x":[]}]}],"errors":null}"#).unwrap();
    assert_eq!(s.format, Some(Format::Jaeger));
    assert_eq!(s.elements, [r#"{"traceID":"a","spans":[{"x":[]}]}"#]);
    let s = split(r#"[{"traceId":"a"},{"id":"b"}]"#).unwrap();
    assert_eq!(s.format, Some(Format::Zipkin));
    assert_eq!(s.elements, [r#"{"traceId":"a"}"#, r#"{"id":"b"}"#]);
    // Zipkin's trace query answers an array of traces, each an array.
    let s = split(r#"[[{"id":"a"}],[{"id":"b"},{"id":"c"}]]"#).unwrap();
    assert_eq!(
        s.elements,
        [r#"[{"id":"a"}]"#, r#"[{"id":"b"},{"id":"c"}]"#]
    );
}

#[test]
fn only_top_level_keys_name_the_elements() {
    let s = split(r#"{"x":{"resourceSpans":[{"no":1}]},"y":"data","resourceSpans":[{"yes":1}]}"#)
        .unwrap();
    assert_eq!(s.elements, [r#"{"yes":1}"#]);
    let s = split(r#"{"resourceSpans":[{"data":[{"inner":1}]}]}"#).unwrap();
    assert_eq!(s.elements, [r#"{"data":[{"inner":1}]}"#]);
}

#[test]
fn many_elements_fill_several_chunks_in_order() {
    let item = format!(r#"{{"pad":"{}"}}"#, "p".repeat(1000));
    let n = 3 * CHUNK_BYTES / item.len();
    let input = format!(
        r#"{{"resourceSpans":[{}]}}"#,
        vec![item.as_str(); n].join(",")
    );
    let s = split_with(&input, 4096, 1 << 20).unwrap();
    assert_eq!(s.elements.len(), n);
    assert!(s.chunks >= 3, "{} chunks", s.chunks);
    assert!(s.elements.iter().all(|e| *e == item));
}

#[test]
fn empty_and_blank_inputs_are_refused_as_empty() {
    assert!(error("").starts_with("is empty"));
    assert!(error(" \n\t ").starts_with("is empty"));
}

#[test]
fn truncated_input_names_where_the_open_value_started() {
    let e = error("{\n\"resourceSpans\":[]}\n{\"resourceSpans\":[{\"a\":\"b");
    assert!(e.contains("starts at line 3, column 1 (byte 22)"), "{e}");
    assert!(e.contains("truncated"), "{e}");
    // A cut NDJSON line is handed out as it is: the parser says it is cut.
    let s = split("{\"resourceSpans\":[]}\n{\"resourceSpans\":[{\"a\":").unwrap();
    assert_eq!(s.elements, [r#"{"resourceSpans":[{"a":"#]);
}

#[test]
fn structural_problems_are_refused_with_their_place() {
    assert!(error("hello").contains("is not JSON: byte 0x68 at line 1, column 1"));
    assert!(error(r#"{"resourceSpans":[]} x"#).contains("not JSON"));
    assert!(error("{\"a\":1]").contains("`]` closes a `{`"));
    assert!(error("]").contains("closes nothing"));
    assert!(error(r#"{"spans":[]}"#).contains("neither `resourceSpans`"));
    assert!(error("{}").contains("neither `resourceSpans`"));
    assert!(error(r#"{"resourceSpans":{}}"#).contains("`resourceSpans` must be an array"));
    assert!(error(r#"{"resourceSpans":null}"#).contains("`resourceSpans` must be an array"));
    assert!(error(r#"{"resourceSpans":[1]}"#).contains("not an object"));
    assert!(error(r#"{"data":[[]]}"#).contains("item of `data` is not an object"));
    assert!(error(r#"["x"]"#).contains("not an object"));
    let e = error("{\"resourceSpans\":[]}\n[{\"id\":\"a\"}]");
    assert!(e.contains("mixes formats: zipkin_v2_json at line 2"), "{e}");
    // Outside the elements the skeleton is bounded; inside one, serde is
    // (it refuses nesting past 128 when the element is parsed).
    assert!(error(&format!("{{\"x\":{}", "[".repeat(2000))).contains("nested deeper than 1024"));
    assert!(error(&"[".repeat(2000)).contains("truncated"));
}

#[test]
fn an_element_over_the_cap_is_refused_whatever_the_reads() {
    let input = format!(r#"{{"resourceSpans":[{{"a":"{}"}}]}}"#, "x".repeat(500));
    for step in [1, 7, 100, 4096] {
        let e = split_with(&input, step, 100).err().unwrap().to_string();
        assert!(
            e.contains("item of `resourceSpans` larger than 100 bytes at line 1, column 19"),
            "{e}"
        );
    }
    assert!(split_with(&input, 7, 600).is_ok());
}

#[test]
fn a_utf8_byte_order_mark_is_skipped_and_utf16_is_refused() {
    let s = split_with("\u{feff}[{\"id\":\"a\"}]", 64, 1024).unwrap();
    assert_eq!(s.elements, [r#"{"id":"a"}"#]);
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend("[]".encode_utf16().flat_map(u16::to_le_bytes));
    let mut s = Splitter::new(&utf16[..], 1024);
    assert!(s.next_chunk().unwrap_err().to_string().contains("UTF-16"));
}

#[test]
fn an_ndjson_line_over_the_cap_is_refused() {
    let input = format!(
        "{{\"resourceSpans\":[]}}\n{{\"resourceSpans\":[{{\"a\":\"{}\"}}]}}\n",
        "x".repeat(500)
    );
    let e = split_with(&input, 7, 100).err().unwrap().to_string();
    assert!(
        e.contains("has a line larger than 100 bytes at line 2, column 1"),
        "{e}"
    );
}
