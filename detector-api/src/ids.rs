//! Trace and span identifiers: fixed-size byte arrays, printed as lowercase hex
//! (the form OTLP/JSON, Jaeger and Zipkin all use).

use std::fmt;

use abi_stable::StableAbi;

/// A 16-byte W3C trace id.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` into `out` (twice as long), without going
/// through the formatter per byte: ids are printed on every finding.
fn hex_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
    let used = &out[..bytes.len() * 2];
    // Only ASCII hex digits were written.
    std::str::from_utf8(used).unwrap_or_default()
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 32];
    f.write_str(hex_into(bytes, &mut buf))
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

impl TraceId {
    /// Parses 32 hex digits; `None` for any other input.
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex::<16>(s).map(Self)
    }

    /// Builds an id from a byte slice of exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// True for the all-zero id, which the W3C trace context declares invalid.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl SpanId {
    /// Parses 16 hex digits; `None` for any other input.
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex::<8>(s).map(Self)
    }

    /// Builds an id from a byte slice of exactly 8 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// True for the all-zero id (no span).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let t = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        assert_eq!(t.to_string(), "0af7651916cd43dd8448eb211c80319c");
        let s = SpanId::from_hex("B7AD6B7169203331").unwrap();
        assert_eq!(s.to_string(), "b7ad6b7169203331");
    }

    #[test]
    fn hex_rejects_bad_input() {
        assert!(TraceId::from_hex("xyz").is_none());
        assert!(TraceId::from_hex("0af7651916cd43dd8448eb211c80319").is_none());
        assert!(SpanId::from_hex("b7ad6b716920333g").is_none());
        assert!(SpanId::from_hex("é7ad6b71692033").is_none());
        assert!(TraceId::from_slice(&[1; 15]).is_none());
    }
}
