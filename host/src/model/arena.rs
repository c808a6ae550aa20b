//! An append-only string arena addressed by `(offset, len)` pairs.

/// A string inside an [`Arena`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrRef {
    off: u32,
    len: u32,
}

impl StrRef {
    /// The empty string.
    pub const EMPTY: StrRef = StrRef { off: 0, len: 0 };

    /// True for an empty string.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        self.len as usize
    }

    /// The same string once its arena has been appended behind `base` bytes.
    pub fn rebased(self, base: u32) -> StrRef {
        if self.len == 0 {
            return StrRef::EMPTY;
        }
        StrRef {
            off: self.off + base,
            len: self.len,
        }
    }
}

/// The largest arena: offsets are `u32`. Traces are capped far below this by
/// `max_events_per_trace` and per-string caps; pushes past it store nothing.
const MAX_ARENA: usize = u32::MAX as usize;

/// Owns the bytes of every string of one trace fragment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Arena {
    buf: String,
}

impl Arena {
    /// An arena with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
        }
    }

    /// Bytes stored.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends `s`, cut to at most `cap` bytes on a char boundary. Returns the
    /// reference and whether `s` was cut.
    pub fn push_capped(&mut self, s: &str, cap: usize) -> (StrRef, bool) {
        let cut = floor_char_boundary(s, cap);
        let piece = &s[..cut];
        if piece.is_empty() || self.buf.len() + piece.len() > MAX_ARENA {
            return (StrRef::EMPTY, cut < s.len());
        }
        let off = self.buf.len() as u32;
        self.buf.push_str(piece);
        (
            StrRef {
                off,
                len: piece.len() as u32,
            },
            cut < s.len(),
        )
    }

    /// Appends `s` whole (callers bound its size).
    pub fn push(&mut self, s: &str) -> StrRef {
        self.push_capped(s, usize::MAX).0
    }

    /// Starts a string built from several pieces; finish with [`Arena::finish`].
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Appends to the string being built (see [`Arena::mark`]).
    pub fn append(&mut self, s: &str) {
        if self.buf.len() + s.len() <= MAX_ARENA {
            self.buf.push_str(s);
        }
    }

    /// Mutable access for `fmt::Write` rendering into the string being built.
    pub fn buf_mut(&mut self) -> &mut String {
        &mut self.buf
    }

    /// Ends the string started at `mark`, cutting it to `cap` bytes.
    pub fn finish(&mut self, mark: usize, cap: usize) -> StrRef {
        let mark = mark.min(self.buf.len());
        let end = mark + floor_char_boundary(&self.buf[mark..], cap);
        self.buf.truncate(end);
        if end == mark {
            return StrRef::EMPTY;
        }
        StrRef {
            off: mark as u32,
            len: (end - mark) as u32,
        }
    }

    /// The string behind `r`; empty when `r` does not belong to this arena.
    pub fn get(&self, r: StrRef) -> &str {
        let start = r.off as usize;
        self.buf.get(start..start + r.len as usize).unwrap_or("")
    }

    /// Appends another arena's bytes; its references must be rebased by the
    /// returned base.
    pub fn extend(&mut self, other: &Arena) -> u32 {
        let base = self.buf.len() as u32;
        self.buf.push_str(&other.buf);
        base
    }

    /// Drops spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// The largest index `<= cap` that is a char boundary of `s`.
pub fn floor_char_boundary(s: &str, cap: usize) -> usize {
    if cap >= s.len() {
        return s.len();
    }
    let mut i = cap;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_and_cap_on_char_boundary() {
        let mut a = Arena::default();
        let r = a.push("hello");
        let (c, cut) = a.push_capped("héllo", 2);
        assert_eq!(a.get(r), "hello");
        assert_eq!(a.get(c), "h");
        assert!(cut);
        assert_eq!(a.get(StrRef::EMPTY), "");
    }

    #[test]
    fn built_strings_and_rebasing() {
        let mut a = Arena::default();
        a.push("xx");
        let m = a.mark();
        a.append("api.example.com");
        a.append("/users/1");
        let r = a.finish(m, 1024);
        assert_eq!(a.get(r), "api.example.com/users/1");
        let mut b = Arena::default();
        b.push("0123");
        let base = b.extend(&a);
        assert_eq!(b.get(r.rebased(base)), "api.example.com/users/1");
    }
}
