//! Request bodies: size caps on the wire and after decompression (a gzip bomb
//! stops at the cap, never allocating past it), and media-type detection.

use std::io::Read;

use super::IngestError;

/// The payload formats OTLP/HTTP carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Protobuf,
    Json,
}

impl MediaType {
    /// Parses a `Content-Type` header (parameters such as `charset` ignored).
    pub fn from_content_type(value: Option<&str>) -> Result<Self, IngestError> {
        let raw = value.unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(MediaType::Protobuf),
            "application/json" => Ok(MediaType::Json),
            _ => Err(IngestError::UnsupportedMediaType(printable(raw))),
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::Protobuf => "application/x-protobuf",
            MediaType::Json => "application/json",
        }
    }
}

/// A header value made safe to echo in an error message.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Decodes `body` according to `Content-Encoding`, refusing output larger
/// than `limit` bytes.
pub fn decompress(
    encoding: Option<&str>,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, IngestError> {
    let encoding = encoding.unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => inflate(
            flate2::read::MultiGzDecoder::new(&body[..]),
            "gzip",
            body.len(),
            limit,
        ),
        "deflate" => inflate(
            flate2::read::ZlibDecoder::new(&body[..]),
            "deflate",
            body.len(),
            limit,
        ),
        _ => Err(IngestError::UnsupportedEncoding(printable(&encoding))),
    }
}

fn inflate(
    reader: impl Read,
    encoding: &'static str,
    compressed: usize,
    limit: usize,
) -> Result<bytes::Bytes, IngestError> {
    // Typical OTLP compresses 5-10x; start there and let the Vec grow, never
    // past limit + 1 bytes.
    let mut out = Vec::with_capacity(compressed.saturating_mul(8).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadCompression {
            encoding,
            detail: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(IngestError::DecompressedTooLarge { limit });
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> bytes::Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap().into()
    }

    #[test]
    fn gzip_round_trip_and_bomb_stops_at_the_cap() {
        let body = gzip(b"hello hello hello");
        assert_eq!(
            &decompress(Some("gzip"), body, 100).unwrap()[..],
            b"hello hello hello"
        );
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024);
        assert!(matches!(
            decompress(Some("gzip"), bomb, 1024 * 1024),
            Err(IngestError::DecompressedTooLarge { limit: 1048576 })
        ));
    }

    #[test]
    fn garbage_and_unknown_encodings_are_refused() {
        assert!(matches!(
            decompress(Some("gzip"), bytes::Bytes::from_static(b"not gzip"), 100),
            Err(IngestError::BadCompression { .. })
        ));
        assert!(matches!(
            decompress(Some("br"), bytes::Bytes::new(), 100),
            Err(IngestError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn media_types() {
        assert_eq!(
            MediaType::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            MediaType::Json
        );
        assert_eq!(
            MediaType::from_content_type(Some("application/x-protobuf")).unwrap(),
            MediaType::Protobuf
        );
        assert!(MediaType::from_content_type(Some("text/plain")).is_err());
        assert!(MediaType::from_content_type(None).is_err());
    }
}
