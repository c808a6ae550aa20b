//! The scanning half of [`Splitter`]: the byte loops over the skeleton of
//! the input (brackets, strings, top-level keys), inside elements (depth and
//! strings only), and over NDJSON lines (a newline search).

use std::io::Read;

use super::{CHUNK_BYTES, Element, Format, MAX_DEPTH, MAX_KEY, Open, SHORT_STRING, Splitter};
use crate::batch::error::InputError;

impl<R: Read> Splitter<R> {
    /// Scans the buffered bytes; true once a chunk is ready.
    pub(super) fn scan(&mut self) -> Result<bool, InputError> {
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
    pub(super) fn finish_element(&mut self) -> Result<bool, InputError> {
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
