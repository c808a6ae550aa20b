//! The zero-copy reader: walks an OTLP `ExportTraceServiceRequest` in its
//! protobuf bytes and hands each span to the [`Builder`] with strings
//! borrowed from the body. Fields perf-sentinel does not read (events,
//! links, trace state, schema URLs, scope versions) are skipped after their
//! framing is checked; every field it does read is checked as prost would
//! (wire type, UTF-8, nesting), so a body prost refuses is refused here too,
//! except for bad text inside a skipped field.

use crate::ingest::wire::{Fields, Payload, WireError};

use super::{Attr, Builder, ConvertLimits, Converted, Origin, SpanIn, Val, service_name};

/// Array and key-value-list nesting accepted in attribute values; prost's
/// own recursion limit is 100 for the whole message.
const MAX_VALUE_DEPTH: usize = 32;

/// Converts protobuf `body`, splitting traces over `shards` shards. Nothing
/// is returned for a body that is malformed anywhere.
pub fn convert_wire(
    body: &[u8],
    shards: usize,
    limits: &ConvertLimits,
) -> Result<Converted, WireError> {
    let mut walk = Walk {
        builder: Builder::new(shards, limits),
        resource_attrs: Vec::new(),
        attrs: Vec::new(),
    };
    let mut f = Fields::new(body, "ExportTraceServiceRequest");
    while let Some((field, p)) = f.next_field()? {
        if field == 1 {
            walk.resource_spans(f.bytes(field, p)?)?;
        }
    }
    Ok(walk.builder.finish())
}

/// Scratch reused for every span of one request.
struct Walk<'a, 'l> {
    builder: Builder<'l>,
    resource_attrs: Vec<Attr<'a>>,
    attrs: Vec<Attr<'a>>,
}

impl<'a> Walk<'a, '_> {
    fn resource_spans(&mut self, body: &'a [u8]) -> Result<(), WireError> {
        // The resource comes first in practice, but nothing in the format
        // says so: read it before any span.
        self.resource_attrs.clear();
        let mut f = Fields::new(body, "ResourceSpans");
        while let Some((field, p)) = f.next_field()? {
            if field == 1 {
                let mut r = Fields::new(f.bytes(field, p)?, "Resource");
                while let Some((field, p)) = r.next_field()? {
                    if field == 1 {
                        self.resource_attrs.push(key_value(r.bytes(field, p)?)?);
                    }
                }
            }
        }
        let service = service_name(&self.resource_attrs);
        let mut f = Fields::new(body, "ResourceSpans");
        while let Some((field, p)) = f.next_field()? {
            if field == 2 {
                self.scope_spans(f.bytes(field, p)?, service)?;
            }
        }
        Ok(())
    }

    fn scope_spans(&mut self, body: &'a [u8], service: &'a str) -> Result<(), WireError> {
        let mut scope = "";
        let mut f = Fields::new(body, "ScopeSpans");
        while let Some((field, p)) = f.next_field()? {
            if field == 1 {
                let mut s = Fields::new(f.bytes(field, p)?, "InstrumentationScope");
                while let Some((field, p)) = s.next_field()? {
                    if field == 1 {
                        scope = s.text(field, p, "the instrumentation scope name")?;
                    }
                }
            }
        }
        let mut f = Fields::new(body, "ScopeSpans");
        while let Some((field, p)) = f.next_field()? {
            if field == 2 {
                let span = self.span(f.bytes(field, p)?)?;
                let origin = Origin {
                    service,
                    scope,
                    resource_attrs: &self.resource_attrs,
                };
                self.builder.add(&span, &self.attrs, origin);
            }
        }
        Ok(())
    }

    /// Reads one span's fields, its attributes into `self.attrs`.
    fn span(&mut self, body: &'a [u8]) -> Result<SpanIn<'a>, WireError> {
        self.attrs.clear();
        let mut s = SpanIn::default();
        let mut f = Fields::new(body, "Span");
        while let Some((field, p)) = f.next_field()? {
            match field {
                1 => s.trace_id = f.bytes(field, p)?,
                2 => s.span_id = f.bytes(field, p)?,
                4 => s.parent_id = f.bytes(field, p)?,
                5 => s.name = f.text(field, p, "a span name")?,
                // An enum is an int32 on the wire: prost truncates the same way.
                6 => s.kind = f.varint_of(field, p)? as i32,
                7 => s.start_ns = f.fixed64_of(field, p)?,
                8 => s.end_ns = f.fixed64_of(field, p)?,
                9 => self.attrs.push(key_value(f.bytes(field, p)?)?),
                15 => {
                    if let Some(code) = status_code(f.bytes(field, p)?)? {
                        s.is_error = code == 2;
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

/// The `code` of a `Status` message, when it has one.
fn status_code(body: &[u8]) -> Result<Option<i32>, WireError> {
    let mut code = None;
    let mut f = Fields::new(body, "Status");
    while let Some((field, p)) = f.next_field()? {
        if field == 3 {
            code = Some(f.varint_of(field, p)? as i32);
        }
    }
    Ok(code)
}

/// A `KeyValue` message: its key and value, nested values validated.
fn key_value(body: &[u8]) -> Result<Attr<'_>, WireError> {
    key_value_at(body, 0)
}

fn key_value_at(body: &[u8], depth: usize) -> Result<Attr<'_>, WireError> {
    let mut key = "";
    let mut value = Val::Empty;
    let mut f = Fields::new(body, "KeyValue");
    while let Some((field, p)) = f.next_field()? {
        match field {
            1 => key = f.text(field, p, "an attribute key")?,
            2 => value = any_value(f.bytes(field, p)?, Some(depth))?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// An `AnyValue` message. With `Some(depth)`, arrays and lists inside are
/// checked down to their leaves; with `None` they are trusted (they were
/// checked when the attribute was first read).
fn any_value(body: &[u8], check_from: Option<usize>) -> Result<Val<'_>, WireError> {
    let mut value = Val::Empty;
    let mut f = Fields::new(body, "AnyValue");
    // A oneof: the last member on the wire wins, as in prost.
    while let Some((field, p)) = f.next_field()? {
        value = match field {
            1 => Val::Str(f.text(field, p, "an attribute value")?),
            2 => Val::Bool(f.varint_of(field, p)? != 0),
            3 => Val::Int(f.varint_of(field, p)? as i64),
            4 => Val::Double(f64::from_bits(f.fixed64_of(field, p)?)),
            5 | 6 => {
                let nested = f.bytes(field, p)?;
                if let Some(depth) = check_from {
                    check_nested(nested, field == 6, depth + 1)?;
                }
                if field == 5 {
                    Val::WireArray(nested)
                } else {
                    Val::WireKvlist(nested)
                }
            }
            7 => Val::Bytes(f.bytes(field, p)?),
            8 => {
                f.varint_of(field, p)?;
                Val::Empty
            }
            _ => continue,
        };
    }
    Ok(value)
}

/// Checks an `ArrayValue` (or, with `kvlist`, a `KeyValueList`) body.
fn check_nested(body: &[u8], kvlist: bool, depth: usize) -> Result<(), WireError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(WireError::TooDeep {
            max: MAX_VALUE_DEPTH,
            context: "an attribute value",
        });
    }
    let mut f = Fields::new(body, if kvlist { "KeyValueList" } else { "ArrayValue" });
    while let Some((field, p)) = f.next_field()? {
        if field == 1 {
            let item = f.bytes(field, p)?;
            if kvlist {
                key_value_at(item, depth)?;
            } else {
                any_value(item, Some(depth))?;
            }
        }
    }
    Ok(())
}

/// The items of a checked `ArrayValue` body.
pub(super) fn array_items(body: &[u8]) -> impl Iterator<Item = Val<'_>> {
    items(body).filter_map(|item| any_value(item, None).ok())
}

/// The entries of a checked `KeyValueList` body.
pub(super) fn kvlist_items(body: &[u8]) -> impl Iterator<Item = (&str, Val<'_>)> {
    items(body).filter_map(|item| {
        let mut key = "";
        let mut value = Val::Empty;
        let mut f = Fields::new(item, "KeyValue");
        while let Ok(Some((field, p))) = f.next_field() {
            match (field, p) {
                (1, Payload::Bytes(b)) => key = std::str::from_utf8(b).ok()?,
                (2, Payload::Bytes(b)) => value = any_value(b, None).ok()?,
                _ => {}
            }
        }
        Some((key, value))
    })
}

/// The field-1 bodies of a message (the repeated member of both lists).
fn items(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut f = Fields::new(body, "list");
    std::iter::from_fn(move || {
        loop {
            match f.next_field() {
                Ok(Some((1, Payload::Bytes(b)))) => return Some(b),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    })
}
