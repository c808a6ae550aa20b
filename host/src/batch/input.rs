//! Opening the input of `analyze`: a file or standard input (`-`), capped
//! in size, decompressed when it is gzip (the Collector's file exporter and
//! CI artifact stores both produce `.gz` files).

use std::io::{Cursor, Read};
use std::path::Path;

use super::error::{InputError, TooLargeMarker};

/// The default cap on the input, in bytes (after decompression).
pub const DEFAULT_MAX_INPUT: u64 = 2 << 30;

/// Parses a size: bytes, or a number with `K`, `M` or `G` (binary
/// multiples; `KiB`, `KB`... are read the same).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "unknown unit in {text:?}; use bytes, or K, M or G (e.g. 512M)"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a size such as 2G or 500M, got {text:?}"))?;
    if n == 0 {
        return Err("must be above 0".into());
    }
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// An opened input.
pub struct Input {
    /// How messages name it: the path, or `standard input`.
    pub name: String,
    pub reader: Box<dyn Read + Send>,
    pub gzip: bool,
}

/// Opens `path` (`-` for standard input), refusing a regular file larger
/// than `max_bytes` at once and any input once it has produced more.
pub fn open(path: &Path, max_bytes: u64) -> Result<Input, (String, InputError)> {
    let (name, raw): (String, Box<dyn Read + Send>) = if path.as_os_str() == "-" {
        ("standard input".to_owned(), Box::new(std::io::stdin()))
    } else {
        let name = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Err((name, InputError::Read(e))),
        };
        let meta = file
            .metadata()
            .map_err(|e| (name.clone(), InputError::Read(e)))?;
        if meta.is_dir() {
            let e = std::io::Error::other("it is a directory");
            return Err((name, InputError::Read(e)));
        }
        if meta.is_file() && meta.len() > max_bytes {
            return Err((name, InputError::TooLarge { limit: max_bytes }));
        }
        (name, Box::new(file))
    };
    let (gzip, reader) = sniff_gzip(raw).map_err(|e| (name.clone(), InputError::Read(e)))?;
    Ok(Input {
        name,
        reader: Box::new(Capped {
            inner: reader,
            left: max_bytes,
            limit: max_bytes,
        }),
        gzip,
    })
}

/// Looks at the first two bytes; gzip's magic number means decompress.
fn sniff_gzip(mut raw: Box<dyn Read + Send>) -> std::io::Result<(bool, Box<dyn Read + Send>)> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let replay = Cursor::new(head[..got].to_vec()).chain(raw);
    if head[..got] == [0x1f, 0x8b] {
        Ok((true, Box::new(flate2::read::MultiGzDecoder::new(replay))))
    } else {
        Ok((false, Box::new(replay)))
    }
}

/// Fails a read once more than `limit` bytes have come through.
struct Capped {
    inner: Box<dyn Read + Send>,
    left: u64,
    limit: u64,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit tells "exactly at it" from "over it".
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(TooLargeMarker { limit: self.limit }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_all(input: Input) -> Result<Vec<u8>, InputError> {
        let mut out = Vec::new();
        let mut reader = input.reader;
        reader
            .read_to_end(&mut out)
            .map_err(InputError::from_read)?;
        Ok(out)
    }

    /// A file in a directory of its own, removed on drop.
    struct Temp(std::path::PathBuf);

    impl Temp {
        fn new(name: &str, bytes: &[u8]) -> Self {
            let dir = std::env::temp_dir().join(format!("ps-input-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
            Temp(dir.join(name))
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn plain_files_read_as_they_are_and_gzip_is_decompressed() {
        let file = Temp::new("plain.json", b"[]");
        let input = open(&file.0, 100).unwrap();
        assert!(!input.gzip);
        assert_eq!(read_all(input).unwrap(), b"[]");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"resourceSpans\":[]}").unwrap();
        let file = Temp::new("packed.json.gz", &gz.finish().unwrap());
        let input = open(&file.0, 100).unwrap();
        assert!(input.gzip);
        assert_eq!(read_all(input).unwrap(), b"{\"resourceSpans\":[]}");
    }

    #[test]
    fn the_cap_refuses_big_files_at_once_and_big_streams_when_reached() {
        let file = Temp::new("big.json", &[b' '; 101]);
        let (name, e) = open(&file.0, 100).err().unwrap();
        assert!(name.ends_with("big.json"));
        assert!(matches!(e, InputError::TooLarge { limit: 100 }));
        // Exactly at the cap is fine.
        let file = Temp::new("edge.json", &[b' '; 100]);
        assert_eq!(read_all(open(&file.0, 100).unwrap()).unwrap().len(), 100);
        // A compressed file under the cap that inflates past it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&[b' '; 10_000]).unwrap();
        let file = Temp::new("bomb.json.gz", &gz.finish().unwrap());
        let e = read_all(open(&file.0, 1000).unwrap()).unwrap_err();
        assert!(matches!(e, InputError::TooLarge { limit: 1000 }), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512 MB"), Ok(512 << 20));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert!(parse_size("1T").unwrap_err().contains("unknown unit"));
        assert!(parse_size("G").is_err());
        assert!(parse_size("0").is_err());
        assert!(
            parse_size("99999999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let (name, e) = open(Path::new("/nonexistent/traces.json"), 100)
            .err()
            .unwrap();
        assert_eq!(name, "/nonexistent/traces.json");
        assert!(e.to_string().contains("No such file"), "{e}");
        let (_, e) = open(&std::env::temp_dir(), 100).err().unwrap();
        assert!(e.to_string().contains("directory"), "{e}");
    }
}
