//! Streams a trace file and cuts it into the JSON elements worth parsing:
//! the `resourceSpans` items of OTLP requests (one object, or one per line
//! as the Collector's file exporter writes them), the `data` items of a
//! Jaeger export (one trace each) and the items of a Zipkin v2 array. The
//! format is recognised from the content as it goes by.
//!
//! Only the skeleton around those elements is read here (brackets, strings,
//! the keys of each top-level object), so the file never has to be in
//! memory whole; each element is then parsed by serde from a slice, which
//! is several times faster than serde reading from a stream. Elements are
//! handed out packed into chunks of about [`CHUNK_BYTES`].

use std::io::Read;
use std::ops::Range;

use super::error::{InputError, Position};

mod skeleton;

/// A chunk is handed out once it holds at least this many bytes.
pub const CHUNK_BYTES: usize = 1 << 20;
const READ_BYTES: usize = 256 * 1024;
/// Deeper nesting than this is refused (serde refuses deeper than 128).
const MAX_DEPTH: usize = 1024;
/// Strings this short are searched byte by byte.
const SHORT_STRING: usize = 48;
/// Keys longer than this are none of those looked for.
const MAX_KEY: usize = 32;

/// The trace formats recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OTLP JSON `ExportTraceServiceRequest` objects.
    Otlp,
    /// A Jaeger UI / query API export (`{"data":[trace, ...]}`).
    Jaeger,
    /// A Zipkin v2 JSON array of spans (or of traces, arrays of spans).
    Zipkin,
}

impl Format {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Otlp => "otlp_json",
            Format::Jaeger => "jaeger_json",
            Format::Zipkin => "zipkin_v2_json",
        }
    }

    /// The array whose items are the elements, as an error names it.
    fn container(self) -> &'static str {
        match self {
            Format::Otlp => "`resourceSpans`",
            Format::Jaeger => "`data`",
            Format::Zipkin => "the top-level array",
        }
    }
}

/// One element: its bytes within the chunk and where it starts in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub range: Range<usize>,
    pub at: Position,
    /// A whole OTLP request (one NDJSON line), not one of its items.
    pub whole: bool,
}

/// Whole elements, in input order.
#[derive(Debug, Default)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub elements: Vec<Element>,
}

/// An element being read: where it started in the chunk and the input, and
/// where its bytes in the read buffer begin.
struct Open {
    chunk_start: usize,
    seg_start: usize,
    at: Position,
}

/// Streams elements out of `R`.
pub struct Splitter<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    line: u64,
    line_start: u64,
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// Inside a top-level object, where a key is due.
    expect_key: bool,
    capturing_key: bool,
    key: Vec<u8>,
    /// The current key of the top-level object names the elements' array.
    pending: Option<Format>,
    /// Depth of the array whose items are elements; 0 when none.
    target_depth: usize,
    format: Option<Format>,
    value_format: Option<Format>,
    value_start: Position,
    values: u64,
    elements: u64,
    open: Option<Open>,
    /// Brackets open inside the current element, its own included.
    elem_depth: u32,
    /// NDJSON of OTLP requests, one per line: each line is handed out
    /// whole, found with a newline search instead of a scan.
    lines: bool,
    chunk: Chunk,
    max_element: usize,
    /// Emptied chunk buffers handed back, reused so that each chunk does
    /// not cost fresh pages.
    spare: Vec<Vec<u8>>,
    started: bool,
    done: bool,
}

impl<R: Read> Splitter<R> {
    /// Reads `reader`; an element larger than `max_element` bytes is an
    /// error (it would have to be held whole).
    pub fn new(reader: R, max_element: usize) -> Self {
        Self {
            reader,
            buf: vec![0; READ_BYTES],
            pos: 0,
            filled: 0,
            base: 0,
            line: 1,
            line_start: 0,
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            expect_key: false,
            capturing_key: false,
            key: Vec::new(),
            pending: None,
            target_depth: 0,
            format: None,
            value_format: None,
            value_start: Position::default(),
            values: 0,
            elements: 0,
            open: None,
            elem_depth: 0,
            lines: false,
            chunk: Chunk::default(),
            max_element,
            spare: Vec::new(),
            started: false,
            done: false,
        }
    }

    /// The format, once the first top-level value has shown it.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Top-level JSON values read (more than one: NDJSON).
    pub fn values(&self) -> u64 {
        self.values
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.base + self.filled as u64
    }

    /// Takes back the bytes of a chunk that has been parsed.
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < 8 {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Hands the chunk out, starting the next in a spare buffer.
    fn take_chunk(&mut self) -> Chunk {
        let bytes = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 2));
        std::mem::replace(
            &mut self.chunk,
            Chunk {
                bytes,
                elements: Vec::new(),
            },
        )
    }

    /// The next chunk of whole elements; `None` at the end of a well-formed
    /// input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, InputError> {
        if self.done {
            return Ok(None);
        }
        loop {
            if self.pos == self.filled && !self.refill()? {
                self.done = true;
                if self.lines && self.open.is_some() {
                    // The last line, without its newline; whether it is
                    // whole is for the parser to say.
                    self.finish_element()?;
                }
                self.finish()?;
                return Ok(
                    (!self.chunk.elements.is_empty()).then(|| std::mem::take(&mut self.chunk))
                );
            }
            if self.scan()? {
                return Ok(Some(self.take_chunk()));
            }
        }
    }

    /// Reads more input; false at its end.
    fn refill(&mut self) -> Result<bool, InputError> {
        if let Some(open) = &mut self.open {
            self.chunk
                .bytes
                .extend_from_slice(&self.buf[open.seg_start..self.filled]);
            open.seg_start = 0;
            let len = self.chunk.bytes.len() - open.chunk_start;
            if len > self.max_element {
                return Err(self.element_too_large());
            }
        }
        self.base += self.filled as u64;
        self.pos = 0;
        self.filled = 0;
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => {
                    self.filled = n;
                    if !self.started && n > 0 {
                        self.started = true;
                        self.skip_byte_order_mark()?;
                    }
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(InputError::from_read(e)),
            }
        }
    }

    /// A UTF-8 byte order mark is skipped; a UTF-16 one is refused.
    fn skip_byte_order_mark(&mut self) -> Result<(), InputError> {
        let start = &self.buf[..self.filled];
        if start.starts_with(&[0xef, 0xbb, 0xbf]) {
            self.pos = 3;
        } else if start.starts_with(&[0xff, 0xfe]) || start.starts_with(&[0xfe, 0xff]) {
            return Err(InputError::Utf16);
        }
        Ok(())
    }

    fn element_too_large(&self) -> InputError {
        let (at, what) = match (&self.open, self.format) {
            (Some(open), _) if self.lines => (open.at, "a line"),
            (Some(open), Some(Format::Otlp)) => (open.at, "an item of `resourceSpans`"),
            (Some(open), Some(Format::Jaeger)) => (open.at, "an item of `data`"),
            (Some(open), _) => (open.at, "an item of the top-level array"),
            _ => (self.here(), "the input"),
        };
        InputError::ElementTooLarge {
            at,
            container: what,
            limit: self.max_element,
        }
    }

    fn here(&self) -> Position {
        let offset = self.base + self.pos as u64;
        Position {
            offset,
            line: self.line,
            column: offset - self.line_start + 1,
        }
    }

    /// Checks the end of the input.
    fn finish(&mut self) -> Result<(), InputError> {
        if self.in_string || !self.stack.is_empty() {
            return Err(InputError::Truncated {
                at: self.here(),
                started: self.value_start,
            });
        }
        if self.values == 0 {
            return Err(InputError::Empty);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
