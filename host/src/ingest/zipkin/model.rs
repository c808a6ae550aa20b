//! The Zipkin span as decoded: only the fields perf-sentinel reads, deserialized by hand so
//! that a field of the wrong type reads as absent instead of refusing the whole body.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::scalar::{Scalar, skip_seq};

/// One Zipkin span: only a JSON object is a span.
pub(super) struct ZipkinSpan<'a> {
    pub(super) fields: Fields<'a>,
    pub(super) local_service: Scalar<'a>,
}

/// The fields of a span perf-sentinel reads.
#[derive(Default)]
pub(super) struct Fields<'a> {
    pub(super) trace_id: Scalar<'a>,
    pub(super) id: Scalar<'a>,
    pub(super) parent_id: Scalar<'a>,
    pub(super) name: Scalar<'a>,
    pub(super) kind: Scalar<'a>,
    pub(super) timestamp: Scalar<'a>,
    pub(super) duration: Scalar<'a>,
    pub(super) remote_service: Scalar<'a>,
    pub(super) tags: Tags<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ZipkinSpan<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SpanVisitor(PhantomData))
    }
}

struct SpanVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for SpanVisitor<'a> {
    type Value = ZipkinSpan<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Zipkin span object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = Fields::default();
        let mut local_service = Scalar::Absent;
        // A repeated key: the last one wins, as in most JSON readers.
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            match key.as_str().unwrap_or("") {
                "traceId" => f.trace_id = map.next_value()?,
                "id" => f.id = map.next_value()?,
                "parentId" => f.parent_id = map.next_value()?,
                "name" => f.name = map.next_value()?,
                "kind" => f.kind = map.next_value()?,
                "timestamp" => f.timestamp = map.next_value()?,
                "duration" => f.duration = map.next_value()?,
                "localEndpoint" => local_service = map.next_value::<Endpoint<'de>>()?.0,
                "remoteEndpoint" => f.remote_service = map.next_value::<Endpoint<'de>>()?.0,
                "tags" => f.tags = map.next_value()?,
                // annotations, shared, debug and anything unknown.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ZipkinSpan {
            fields: f,
            local_service,
        })
    }
}

/// An endpoint object; only `serviceName` is read. Anything that is not an
/// object reads as no endpoint.
struct Endpoint<'a>(Scalar<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Endpoint<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectOnly::<Endpoint<'a>>(PhantomData))
    }
}

/// The tags object, in order; anything that is not an object reads as no
/// tags, and a tag whose value is an object or array is left out.
#[derive(Default)]
pub(super) struct Tags<'a>(pub(super) Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Tags<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectOnly::<Tags<'a>>(PhantomData))
    }
}

/// A value read from a JSON object, or empty when the JSON is not one.
trait FromObject<'de>: Sized {
    fn empty() -> Self;
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl<'de: 'a, 'a> FromObject<'de> for Endpoint<'a> {
    fn empty() -> Self {
        Endpoint(Scalar::Absent)
    }

    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut service = Scalar::Absent;
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            if key.as_str() == Some("serviceName") {
                service = map.next_value()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Endpoint(service))
    }
}

impl<'de: 'a, 'a> FromObject<'de> for Tags<'a> {
    fn empty() -> Self {
        Tags(Vec::new())
    }

    fn from_object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut tags = Vec::new();
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            let value: Scalar<'de> = map.next_value()?;
            if let Scalar::Str(key) = key
                && value != Scalar::Absent
            {
                tags.push((key, value));
            }
        }
        Ok(Tags(tags))
    }
}

struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_object(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        skip_seq(seq).map(|()| T::empty())
    }

    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::empty())
    }

    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::empty())
    }
}
