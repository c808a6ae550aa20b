//! OTLP JSON `resourceSpans` items decoded into the `opentelemetry-proto`
//! types, several times faster than their own serde support: that reads
//! every attribute value through serde's buffered `flatten` and `untagged`
//! machinery (an allocation per key and value, then a second pass), which
//! made up most of a batch run's parsing time. Here each type has a direct
//! visitor; keys are borrowed from the input; the semantics are theirs
//! (hex ids, 64-bit integers as strings or numbers, enums as integers,
//! base64 bytes, unknown keys ignored), checked against their decoder by a
//! property test. Two differences, both for a CI run over a whole file
//! rather than one request: an id that is not hex becomes an invalid id
//! that the conversion refuses (the span is counted, the file goes on), and
//! span events and links, which no detector reads, are skipped unparsed.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Decodes one `resourceSpans` item.
pub fn resource_spans(bytes: &[u8]) -> Result<ResourceSpans, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Json(rs) = Json::<ResourceSpans>::deserialize(&mut de)?;
    de.end()?;
    Ok(rs)
}

/// Decodes one whole `ExportTraceServiceRequest` (an NDJSON line).
pub fn request(bytes: &[u8]) -> Result<Vec<ResourceSpans>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Json(Request(items)) = Json::<Request>::deserialize(&mut de)?;
    de.end()?;
    items.ok_or_else(|| {
        de::Error::custom(
            "no `resourceSpans`: every line of OTLP NDJSON is an ExportTraceServiceRequest",
        )
    })
}

/// A request's items; `None` when it has no `resourceSpans` key.
#[derive(Default)]
struct Request(Option<Vec<ResourceSpans>>);

impl Read for Request {
    const EXPECTING: &'static str = "an ExportTraceServiceRequest object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut items = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "resourceSpans" => items = Some(map.next_value::<List<ResourceSpans>>()?.0),
                _ => skip(&mut map)?,
            }
        }
        Ok(Request(items))
    }
}

/// A type read by its own visitor.
trait Read: Sized {
    const EXPECTING: &'static str;

    fn read_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// `T` as it appears in OTLP JSON; `null` reads as the default.
struct Json<T>(T);

impl<'de, T: Read + Default> Deserialize<'de> for Json<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Read + Default> Visitor<'de> for V<T> {
            type Value = Json<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<T>, A::Error> {
                T::read_map(map).map(Json)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Json<T>, E> {
                Ok(Json(T::default()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A list of `T`; `null` reads as empty.
struct List<T>(Vec<T>);

impl<'de, T: Read + Default> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Read + Default> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of {}", T::EXPECTING)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Json(item)) = seq.next_element::<Json<T>>()? {
                    out.push(item);
                }
                Ok(List(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<List<T>, E> {
                Ok(List(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string; `null` reads as empty.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(|s| Text(s.unwrap_or_default()))
    }
}

/// A 64-bit integer written as a number or a decimal string.
struct Int<T>(T);

impl<'de, T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr + Default> Deserialize<'de>
    for Int<T>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr + Default> Visitor<'de> for V<T> {
            type Value = Int<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<T>, E> {
                T::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<T>, E> {
                T::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Int<T>, E> {
                s.parse()
                    .map(Int)
                    .map_err(|_| E::custom(format!("{s:?} is not an integer in range")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Int<T>, E> {
                Ok(Int(T::default()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A hex id; anything else is kept as one byte, an id the conversion
/// refuses.
struct HexId(Vec<u8>);

impl<'de> Deserialize<'de> for HexId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HexId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex id")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HexId, E> {
                Ok(HexId(hex(s).unwrap_or_else(|| vec![0])))
            }
            fn visit_unit<E: de::Error>(self) -> Result<HexId, E> {
                Ok(HexId(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

impl Read for ResourceSpans {
    const EXPECTING: &'static str = "a resourceSpans object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut rs = ResourceSpans::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "resource" => {
                    rs.resource = map.next_value::<Option<Json<Resource>>>()?.map(|j| j.0)
                }
                "scopeSpans" => rs.scope_spans = map.next_value::<List<ScopeSpans>>()?.0,
                "schemaUrl" => rs.schema_url = map.next_value::<Text>()?.0,
                _ => skip(&mut map)?,
            }
        }
        Ok(rs)
    }
}

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

impl Read for Resource {
    const EXPECTING: &'static str = "a resource object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut r = Resource::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "attributes" => r.attributes = map.next_value::<List<KeyValue>>()?.0,
                "droppedAttributesCount" => {
                    r.dropped_attributes_count = map.next_value::<Int<u32>>()?.0
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(r)
    }
}

impl Read for ScopeSpans {
    const EXPECTING: &'static str = "a scopeSpans object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut ss = ScopeSpans::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "scope" => {
                    ss.scope = map
                        .next_value::<Option<Json<InstrumentationScope>>>()?
                        .map(|j| j.0)
                }
                "spans" => ss.spans = map.next_value::<List<Span>>()?.0,
                "schemaUrl" => ss.schema_url = map.next_value::<Text>()?.0,
                _ => skip(&mut map)?,
            }
        }
        Ok(ss)
    }
}

impl Read for InstrumentationScope {
    const EXPECTING: &'static str = "a scope object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut s = InstrumentationScope::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "name" => s.name = map.next_value::<Text>()?.0,
                "version" => s.version = map.next_value::<Text>()?.0,
                "attributes" => s.attributes = map.next_value::<List<KeyValue>>()?.0,
                "droppedAttributesCount" => {
                    s.dropped_attributes_count = map.next_value::<Int<u32>>()?.0
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(s)
    }
}

impl Read for Span {
    const EXPECTING: &'static str = "a span object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut s = Span::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "traceId" => s.trace_id = map.next_value::<HexId>()?.0,
                "spanId" => s.span_id = map.next_value::<HexId>()?.0,
                "parentSpanId" => s.parent_span_id = map.next_value::<HexId>()?.0,
                "traceState" => s.trace_state = map.next_value::<Text>()?.0,
                "flags" => s.flags = map.next_value::<Int<u32>>()?.0,
                "name" => s.name = map.next_value::<Text>()?.0,
                "kind" => s.kind = map.next_value::<Int<i32>>()?.0,
                "startTimeUnixNano" => s.start_time_unix_nano = map.next_value::<Int<u64>>()?.0,
                "endTimeUnixNano" => s.end_time_unix_nano = map.next_value::<Int<u64>>()?.0,
                "attributes" => s.attributes = map.next_value::<List<KeyValue>>()?.0,
                "droppedAttributesCount" => {
                    s.dropped_attributes_count = map.next_value::<Int<u32>>()?.0
                }
                "droppedEventsCount" => s.dropped_events_count = map.next_value::<Int<u32>>()?.0,
                "droppedLinksCount" => s.dropped_links_count = map.next_value::<Int<u32>>()?.0,
                "status" => s.status = map.next_value::<Option<Json<Status>>>()?.map(|j| j.0),
                // "events", "links" and anything unknown.
                _ => skip(&mut map)?,
            }
        }
        Ok(s)
    }
}

impl Read for Status {
    const EXPECTING: &'static str = "a status object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut s = Status::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "code" => s.code = map.next_value::<Int<i32>>()?.0,
                "message" => s.message = map.next_value::<Text>()?.0,
                _ => skip(&mut map)?,
            }
        }
        Ok(s)
    }
}

impl Read for KeyValue {
    const EXPECTING: &'static str = "a key/value object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut kv = KeyValue::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "key" => kv.key = map.next_value::<Text>()?.0,
                "value" => kv.value = map.next_value::<Option<Json<AnyValue>>>()?.map(|j| j.0),
                _ => skip(&mut map)?,
            }
        }
        Ok(kv)
    }
}

impl Read for AnyValue {
    const EXPECTING: &'static str = "an AnyValue object";

    /// The last field set wins; `null` fields and unknown keys are ignored,
    /// as in the OTLP/JSON specification.
    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut value = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let read = match key.as_ref() {
                "stringValue" => map.next_value::<Option<String>>()?.map(Value::StringValue),
                "boolValue" => map.next_value::<Option<bool>>()?.map(Value::BoolValue),
                "intValue" => map
                    .next_value::<Option<Int<i64>>>()?
                    .map(|i| Value::IntValue(i.0)),
                "doubleValue" => map.next_value::<Option<f64>>()?.map(Value::DoubleValue),
                "arrayValue" => map
                    .next_value::<Option<Json<ArrayValue>>>()?
                    .map(|a| Value::ArrayValue(a.0)),
                "kvlistValue" => map
                    .next_value::<Option<Json<KeyValueList>>>()?
                    .map(|l| Value::KvlistValue(l.0)),
                "bytesValue" => match map.next_value::<Option<Cow<'de, str>>>()? {
                    Some(text) => Some(Value::BytesValue(
                        base64::engine::general_purpose::STANDARD
                            .decode(text.as_bytes())
                            .map_err(de::Error::custom)?,
                    )),
                    None => None,
                },
                _ => {
                    skip(&mut map)?;
                    None
                }
            };
            if read.is_some() {
                value = read;
            }
        }
        Ok(AnyValue { value })
    }
}

impl Read for ArrayValue {
    const EXPECTING: &'static str = "an arrayValue object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut a = ArrayValue::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "values" => a.values = map.next_value::<List<AnyValue>>()?.0,
                _ => skip(&mut map)?,
            }
        }
        Ok(a)
    }
}

impl Read for KeyValueList {
    const EXPECTING: &'static str = "a kvlistValue object";

    fn read_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut l = KeyValueList::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "values" => l.values = map.next_value::<List<KeyValue>>()?.0,
                _ => skip(&mut map)?,
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
#[path = "otlp_json_tests.rs"]
mod tests;
