//! A lenient JSON scalar, the reader of every key and plain value of a span: a value of the
//! wrong type or shape reads as absent instead of failing the whole body, nested values are
//! skipped without recursion, and strings stay borrowed where JSON escapes allow.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON scalar as read; objects and arrays are skipped and read as absent.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// The string, when the value is one.
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text: a string as is, a number or boolean as printed.
    pub(super) fn into_text(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Absent => None,
            Scalar::Str(s) => Some(s),
            Scalar::Unsigned(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Signed(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Float(n) => Some(Cow::Owned(n.to_string())),
            Scalar::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        }
    }

    /// A non-negative count of microseconds: negative, absent or
    /// non-numeric reads as 0, too large saturates.
    pub(super) fn micros(&self) -> u64 {
        match self {
            Scalar::Unsigned(n) => *n,
            // The cast saturates; NaN reads as 0.
            Scalar::Float(f) if *f > 0.0 => *f as u64,
            Scalar::Str(s) => s.trim().parse().unwrap_or(0),
            _ => 0,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Unsigned(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Signed(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq).map(|()| Scalar::Absent)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map).map(|()| Scalar::Absent)
    }
}

pub(super) fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}
