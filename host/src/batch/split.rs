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

    /// Scans the buffered bytes; true once a chunk is ready.
    fn scan(&mut self) -> Result<bool, InputError> {
        if self.lines {
            return self.scan_lines();
        }
        while self.pos < self.filled {
            if self.open.is_some() {
                if self.scan_element() && self.finish_element()? {
                    return Ok(true);
                }
                continue;
            }
            if self.in_string {
                self.scan_string();
                continue;
            }
            let b = self.buf[self.pos];
            match b {
                b' ' | b'\t' | b'\r' => {}
                b'\n' => {
                    self.line += 1;
                    self.line_start = self.base + self.pos as u64 + 1;
                }
                b'"' => {
                    self.value_byte(b)?;
                    self.in_string = true;
                    if self.stack.len() == 1 && self.stack[0] == b'{' && self.expect_key {
                        self.capturing_key = true;
                        self.key.clear();
                    }
                }
                b':' => {
                    if self.stack.len() == 1 && self.expect_key {
                        self.expect_key = false;
                        self.pending = match self.key.as_slice() {
                            b"resourceSpans" => Some(Format::Otlp),
                            b"data" => Some(Format::Jaeger),
                            _ => None,
                        };
                    }
                }
                b',' => {
                    if self.stack.len() == 1 && self.stack[0] == b'{' {
                        self.expect_key = true;
                        self.pending = None;
                    }
                }
                b'{' | b'[' => self.open_container(b)?,
                b'}' | b']' => {
                    self.close_container(b)?;
                    if self.lines {
                        self.pos += 1;
                        return self.scan_lines();
                    }
                }
                _ => self.value_byte(b)?,
            }
            self.pos += 1;
        }
        Ok(false)
    }

    /// NDJSON: each non-blank line is a whole element, ended by the next
    /// newline.
    fn scan_lines(&mut self) -> Result<bool, InputError> {
        while self.pos < self.filled {
            if self.open.is_none() {
                let b = self.buf[self.pos];
                match b {
                    b'\n' => {
                        self.line += 1;
                        self.line_start = self.base + self.pos as u64 + 1;
                        self.pos += 1;
                        continue;
                    }
                    b' ' | b'\t' | b'\r' => {
                        self.pos += 1;
                        continue;
                    }
                    b'{' => {}
                    b'[' => {
                        return Err(InputError::MixedFormats {
                            at: self.here(),
                            first: Format::Otlp.name(),
                            then: Format::Zipkin.name(),
                        });
                    }
                    _ => {
                        return Err(InputError::NotJson {
                            at: self.here(),
                            found: b,
                        });
                    }
                }
                self.values += 1;
                self.value_start = self.here();
                self.open = Some(Open {
                    chunk_start: self.chunk.bytes.len(),
                    seg_start: self.pos,
                    at: self.here(),
                });
            }
            match memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                None => self.pos = self.filled,
                Some(k) => {
                    self.pos += k;
                    let ready = self.finish_element()?;
                    self.line += 1;
                    self.line_start = self.base + self.pos as u64 + 1;
                    self.pos += 1;
                    if ready {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Scans inside an open element, where only brackets, strings and line
    /// ends matter: a tight loop over the bytes that hold nearly all of the
    /// input. True once the element's closing bracket is passed.
    fn scan_element(&mut self) -> bool {
        let buf = &self.buf[..self.filled];
        let base = self.base;
        let mut i = self.pos;
        let mut depth = self.elem_depth;
        let mut in_string = self.in_string;
        let mut escaped = self.escaped;
        let mut line = self.line;
        let mut line_start = self.line_start;
        let mut closed = false;
        while i < buf.len() {
            if in_string {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                // Most strings are short: look at a few bytes by hand
                // before paying for a vectorised search.
                let rest = &buf[i..];
                let found = rest
                    .iter()
                    .take(SHORT_STRING)
                    .position(|&c| c == b'"' || c == b'\\')
                    .or_else(|| {
                        rest.get(SHORT_STRING..)
                            .and_then(|tail| memchr::memchr2(b'"', b'\\', tail))
                            .map(|k| k + SHORT_STRING)
                    });
                match found {
                    Some(k) => {
                        i += k;
                        if buf[i] == b'\\' {
                            escaped = true;
                        } else {
                            in_string = false;
                        }
                        i += 1;
                    }
                    None => i = buf.len(),
                }
                continue;
            }
            match buf[i] {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        closed = true;
                        break;
                    }
                }
                b'\n' => {
                    line += 1;
                    line_start = base + i as u64 + 1;
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        self.elem_depth = depth;
        self.in_string = in_string;
        self.escaped = escaped;
        self.line = line;
        self.line_start = line_start;
        closed
    }

    /// Moves the element just closed into the chunk; true when the chunk
    /// is full.
    fn finish_element(&mut self) -> Result<bool, InputError> {
        let Some(open) = self.open.take() else {
            return Ok(false);
        };
        self.chunk
            .bytes
            .extend_from_slice(&self.buf[open.seg_start..self.pos]);
        if self.chunk.bytes.len() - open.chunk_start > self.max_element {
            self.open = Some(open);
            return Err(self.element_too_large());
        }
        self.chunk.elements.push(Element {
            range: open.chunk_start..self.chunk.bytes.len(),
            at: open.at,
            whole: self.lines,
        });
        self.elements += 1;
        Ok(self.chunk.bytes.len() >= CHUNK_BYTES)
    }

    /// Skips string content up to its closing quote (or the buffer's end).
    fn scan_string(&mut self) {
        if self.escaped {
            self.escaped = false;
            self.take_key_bytes(self.pos, self.pos + 1);
            self.pos += 1;
            return;
        }
        let rest = &self.buf[self.pos..self.filled];
        match memchr::memchr2(b'"', b'\\', rest) {
            None => {
                self.take_key_bytes(self.pos, self.filled);
                self.pos = self.filled;
            }
            Some(k) => {
                let at = self.pos + k;
                self.take_key_bytes(self.pos, at + 1);
                if self.buf[at] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.capturing_key {
                        self.capturing_key = false;
                        self.key.pop();
                    }
                }
                self.pos = at + 1;
            }
        }
    }

    fn take_key_bytes(&mut self, from: usize, to: usize) {
        if self.capturing_key && self.key.len() <= MAX_KEY {
            let room = MAX_KEY + 1 - self.key.len();
            let end = to.min(from + room);
            self.key.extend_from_slice(&self.buf[from..end]);
        }
    }

    /// A byte that starts or continues a scalar (or a string) value.
    fn value_byte(&mut self, b: u8) -> Result<(), InputError> {
        let depth = self.stack.len();
        if depth == 0 {
            return Err(InputError::NotJson {
                at: self.here(),
                found: b,
            });
        }
        if depth == 1 && self.pending.is_some() {
            return Err(self.not_an_array());
        }
        if depth == self.target_depth && self.open.is_none() {
            return Err(InputError::Structure {
                at: self.here(),
                message: format!(
                    "an item of {} is not an object",
                    self.format.map_or("the array", Format::container)
                ),
            });
        }
        Ok(())
    }

    fn not_an_array(&self) -> InputError {
        InputError::Structure {
            at: self.here(),
            message: format!(
                "{} must be an array",
                self.pending.map_or("the value", Format::container)
            ),
        }
    }

    fn open_container(&mut self, b: u8) -> Result<(), InputError> {
        let depth = self.stack.len();
        if depth >= MAX_DEPTH {
            return Err(InputError::Structure {
                at: self.here(),
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        if depth == 0 {
            self.values += 1;
            self.value_start = self.here();
            self.value_format = None;
            self.pending = None;
            if b == b'[' {
                self.set_format(Format::Zipkin)?;
                self.target_depth = 1;
            } else {
                self.expect_key = true;
            }
        } else if depth == 1 && self.pending.is_some() {
            if b != b'[' {
                return Err(self.not_an_array());
            }
            if let Some(format) = self.pending.take() {
                self.set_format(format)?;
            }
            self.target_depth = 2;
        } else if depth == self.target_depth && self.open.is_none() {
            if matches!(self.format, Some(Format::Otlp | Format::Jaeger)) && b != b'{' {
                return Err(InputError::Structure {
                    at: self.here(),
                    message: format!(
                        "an item of {} is not an object",
                        self.format.map_or("the array", Format::container)
                    ),
                });
            }
            self.open = Some(Open {
                chunk_start: self.chunk.bytes.len(),
                seg_start: self.pos,
                at: self.here(),
            });
            // Inside, only its own depth is counted (see `scan_element`).
            self.elem_depth = 1;
            return Ok(());
        }
        self.stack.push(b);
        Ok(())
    }

    /// Closes a container of the skeleton (elements close in
    /// `scan_element`).
    fn close_container(&mut self, b: u8) -> Result<(), InputError> {
        let expected = if b == b'}' { b'{' } else { b'[' };
        match self.stack.pop() {
            Some(open) if open == expected => {}
            Some(open) => {
                return Err(InputError::Structure {
                    at: self.here(),
                    message: format!("`{}` closes a `{}`", char::from(b), char::from(open)),
                });
            }
            None => {
                return Err(InputError::Structure {
                    at: self.here(),
                    message: format!("`{}` closes nothing", char::from(b)),
                });
            }
        }
        let depth = self.stack.len();
        if self.target_depth > 0 && depth + 1 == self.target_depth {
            self.target_depth = 0;
        }
        if depth == 0 && self.value_format.is_none() {
            return Err(InputError::UnknownObject {
                at: self.value_start,
            });
        }
        if depth == 0
            && self.value_format == Some(Format::Otlp)
            && self.value_start.column == 1
            && self.value_start.line == self.line
        {
            // One request on one line: the Collector's file exporter.
            // The lines after it are handed out whole.
            self.lines = true;
        }
        Ok(())
    }

    fn set_format(&mut self, format: Format) -> Result<(), InputError> {
        match self.format {
            Some(first) if first != format => {
                return Err(InputError::MixedFormats {
                    at: self.value_start,
                    first: first.name(),
                    then: format.name(),
                });
            }
            _ => self.format = Some(format),
        }
        self.value_format = Some(format);
        Ok(())
    }
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
