//! A protobuf wire-format reader that borrows from the request body: fields
//! are yielded as tags with borrowed payloads, nothing is allocated, and
//! every length is checked against the bytes actually there (a hostile
//! length field can make the reader fail, never allocate).
//!
//! It exists because prost's owned decode (a `String` or `Vec` per field,
//! every field decoded) was the largest cost of OTLP ingest; the OTLP walker
//! in `convert::from_wire` reads only the fields perf-sentinel uses.

/// What is wrong with a body, at the byte offset where it was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message ends inside a field ({context})")]
    Truncated { context: &'static str },
    #[error("varint longer than 10 bytes ({context})")]
    VarintOverflow { context: &'static str },
    #[error("wire type {wire_type} of field {field} is not valid for {context}")]
    WireType {
        field: u32,
        wire_type: u8,
        context: &'static str,
    },
    #[error("field number 0, an unmatched group end or an unknown wire type ({context})")]
    BadTag { context: &'static str },
    #[error("invalid UTF-8 in {context}")]
    InvalidUtf8 { context: &'static str },
    #[error("values nested deeper than {max} levels ({context})")]
    TooDeep { max: usize, context: &'static str },
}

/// A field's payload, by wire type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    /// A (deprecated) group, already skipped: no OTLP field is one, but
    /// prost skips them in unknown fields, so the walker does too.
    Group,
}

/// Groups nested in groups that are skipped; deeper is refused as
/// [`WireError::TooDeep`] (prost's limit is its recursion limit of 100).
const MAX_GROUP_DEPTH: usize = 32;

/// Iterates the fields of one message body.
#[derive(Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    context: &'static str,
}

impl<'a> Fields<'a> {
    /// The fields of `body`; `context` names the message in errors.
    pub fn new(body: &'a [u8], context: &'static str) -> Self {
        Self {
            rest: body,
            context,
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Tags, lengths and small numbers fit one byte: the common case.
        if let Some(&b) = self.rest.first()
            && b < 0x80
        {
            self.rest = &self.rest[1..];
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    #[cold]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &b) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.rest.len() >= 10 {
            WireError::VarintOverflow {
                context: self.context,
            }
        } else {
            WireError::Truncated {
                context: self.context,
            }
        })
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.rest.len() {
            return Err(WireError::Truncated {
                context: self.context,
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next field, `None` at the end of the body.
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<(u32, Payload<'a>)>, WireError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = self.field_number(key)?;
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or([0; 8]),
            )),
            2 => {
                let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                Payload::Bytes(self.take(len)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or([0; 4]),
            )),
            3 => {
                self.skip_group(field)?;
                Payload::Group
            }
            // 4 ends a group none opened; 6 and 7 do not exist.
            _ => {
                return Err(WireError::BadTag {
                    context: self.context,
                });
            }
        };
        Ok(Some((field, payload)))
    }

    /// The field number of `key`, refused as prost refuses it: 0, or a key
    /// beyond 32 bits.
    #[inline]
    fn field_number(&self, key: u64) -> Result<u32, WireError> {
        match u32::try_from(key).map(|k| k >> 3) {
            Ok(field) if field != 0 => Ok(field),
            _ => Err(WireError::BadTag {
                context: self.context,
            }),
        }
    }

    /// Skips the fields of the group `field` just opened, through its end
    /// tag. Groups inside it are tracked on a fixed stack: no allocation.
    #[cold]
    fn skip_group(&mut self, field: u32) -> Result<(), WireError> {
        let mut open = [0u32; MAX_GROUP_DEPTH];
        open[0] = field;
        let mut depth = 1;
        loop {
            if self.rest.is_empty() {
                return Err(WireError::Truncated {
                    context: self.context,
                });
            }
            let key = self.varint()?;
            let inner = self.field_number(key)?;
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
                    self.take(len)?;
                }
                5 => {
                    self.take(4)?;
                }
                3 if depth == MAX_GROUP_DEPTH => {
                    return Err(WireError::TooDeep {
                        max: MAX_GROUP_DEPTH,
                        context: self.context,
                    });
                }
                3 => {
                    open[depth] = inner;
                    depth += 1;
                }
                4 if open[depth - 1] == inner => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {
                    return Err(WireError::BadTag {
                        context: self.context,
                    });
                }
            }
        }
    }

    /// A wire-type error for `field` carrying `payload`.
    #[cold]
    pub fn wrong_type(&self, field: u32, payload: Payload<'_>) -> WireError {
        WireError::WireType {
            field,
            wire_type: match payload {
                Payload::Varint(_) => 0,
                Payload::Fixed64(_) => 1,
                Payload::Bytes(_) => 2,
                Payload::Group => 3,
                Payload::Fixed32(_) => 5,
            },
            context: self.context,
        }
    }

    /// `payload` as a length-delimited body, or a wire-type error.
    #[inline]
    pub fn bytes(&self, field: u32, payload: Payload<'a>) -> Result<&'a [u8], WireError> {
        match payload {
            Payload::Bytes(b) => Ok(b),
            other => Err(self.wrong_type(field, other)),
        }
    }

    /// `payload` as UTF-8 text, or an error naming `what`.
    #[inline]
    pub fn text(
        &self,
        field: u32,
        payload: Payload<'a>,
        what: &'static str,
    ) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(field, payload)?)
            .map_err(|_| WireError::InvalidUtf8 { context: what })
    }

    /// `payload` as a varint, or a wire-type error.
    #[inline]
    pub fn varint_of(&self, field: u32, payload: Payload<'a>) -> Result<u64, WireError> {
        match payload {
            Payload::Varint(v) => Ok(v),
            other => Err(self.wrong_type(field, other)),
        }
    }

    /// `payload` as a fixed64, or a wire-type error.
    #[inline]
    pub fn fixed64_of(&self, field: u32, payload: Payload<'a>) -> Result<u64, WireError> {
        match payload {
            Payload::Fixed64(v) => Ok(v),
            other => Err(self.wrong_type(field, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &[u8]) -> Result<Vec<(u32, Payload<'_>)>, WireError> {
        let mut f = Fields::new(body, "test");
        let mut out = Vec::new();
        while let Some(x) = f.next_field()? {
            out.push(x);
        }
        Ok(out)
    }

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed64 7, field 4 fixed32 9
        let body = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x19, 7, 0, 0, 0, 0, 0, 0, 0, 0x25, 9, 0, 0,
            0,
        ];
        assert_eq!(
            all(&body).unwrap(),
            [
                (1, Payload::Varint(300)),
                (2, Payload::Bytes(b"hi")),
                (3, Payload::Fixed64(7)),
                (4, Payload::Fixed32(9)),
            ]
        );
    }

    #[test]
    fn hostile_lengths_and_tags_fail_without_allocating() {
        // A length of 2^63 with 2 bytes behind it.
        let huge = [
            0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1, 2,
        ];
        assert!(matches!(all(&huge), Err(WireError::Truncated { .. })));
        assert!(matches!(all(&[0x08; 3]), Err(WireError::Truncated { .. })));
        assert!(matches!(
            all(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]),
            Err(WireError::VarintOverflow { .. })
        ));
        assert!(matches!(all(&[0x00, 0x01]), Err(WireError::BadTag { .. })));
        assert!(
            matches!(all(&[0x0b]), Err(WireError::Truncated { .. })),
            "a group never closed"
        );
        assert!(
            matches!(all(&[0x0c]), Err(WireError::BadTag { .. })),
            "a group end with no group"
        );
        assert!(
            matches!(all(&[0x0b, 0x14]), Err(WireError::BadTag { .. })),
            "a group closed by another field's end"
        );
        // A key over 32 bits: prost refuses it even though its field number
        // fits a u32.
        assert!(matches!(
            all(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]),
            Err(WireError::BadTag { .. })
        ));
        let deep: Vec<u8> = std::iter::repeat_n(0x0b, MAX_GROUP_DEPTH + 1)
            .chain(std::iter::repeat_n(0x0c, MAX_GROUP_DEPTH + 1))
            .collect();
        assert!(matches!(all(&deep), Err(WireError::TooDeep { .. })));
        assert!(matches!(
            all(&[0x19, 1, 2]),
            Err(WireError::Truncated { .. })
        ));
    }

    /// Found by the `otlp_protobuf` fuzz target: a group in an unknown
    /// field (deprecated, but valid protobuf that prost skips) made the
    /// walker refuse the whole request.
    #[test]
    fn groups_are_skipped_like_prost_skips_them() {
        // field 14 group holding field 12 fixed64 and a nested group 3
        // {field 1 varint}, then field 2 bytes.
        let body = [
            0x73, 0x61, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b, 0x08, 0x05, 0x1c, 0x74, 0x12, 0x01, 0xaa,
        ];
        assert_eq!(
            all(&body).unwrap(),
            [(14, Payload::Group), (2, Payload::Bytes(&[0xaa]))]
        );
        let f = Fields::new(&[], "span");
        assert!(matches!(
            f.bytes(1, Payload::Group),
            Err(WireError::WireType {
                field: 1,
                wire_type: 3,
                ..
            })
        ));
    }

    #[test]
    fn typed_accessors_check_the_wire_type() {
        let f = Fields::new(&[], "span");
        assert!(matches!(
            f.bytes(5, Payload::Varint(1)),
            Err(WireError::WireType { field: 5, .. })
        ));
        assert!(matches!(
            f.text(5, Payload::Bytes(b"\xff"), "span name"),
            Err(WireError::InvalidUtf8 {
                context: "span name"
            })
        ));
        assert_eq!(f.varint_of(6, Payload::Varint(2)).unwrap(), 2);
        assert_eq!(f.fixed64_of(7, Payload::Fixed64(3)).unwrap(), 3);
    }
}
