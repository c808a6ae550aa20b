//! Building the template: copies the input in as few pieces as possible and writes `?` for
//! literals, collapsed whitespace and `(?, ?, ...)` lists, which are the only places the
//! template differs from the statement.

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gap {
    None,
    Space,
    /// a `--` comment precedes: a space would pull the following SQL into the comment
    /// when the template is normalized again
    Newline,
}

/// How far the innermost `(` is through `?, ?, ...`; holds the template length just after
/// the `(` so the list can be rewound to a single `?`.
#[derive(Clone, Copy)]
pub(super) enum List {
    Off,
    ExpectItem(usize),
    ExpectSep(usize),
}

/// Builds the template. Most of a statement is copied unchanged, so input is not copied token
/// by token: `src[pend..]` is owed to `out` and is copied in one piece when something that
/// differs from the input (a `?`, a collapsed whitespace run) has to be written.
pub(super) struct Writer<'a> {
    pub(super) src: &'a str,
    pub(super) out: &'a mut String,
    pub(super) base: usize,
    pub(super) pend: usize,
    /// separator owed before `src[pend..]`, for a whitespace run that was not a lone space
    pub(super) gap: Gap,
    pub(super) list: List,
}

impl Writer<'_> {
    #[inline]
    fn emit_gap(&mut self) {
        // nothing written yet means the run was leading whitespace, which is trimmed
        if self.out.len() > self.base {
            match self.gap {
                Gap::None => {}
                Gap::Space => self.out.push(' '),
                Gap::Newline => self.out.push('\n'),
            }
        }
        self.gap = Gap::None;
    }

    /// Copies the owed input up to `upto`; an empty stretch writes nothing, so a trailing
    /// gap is never written.
    #[inline]
    pub(super) fn flush(&mut self, upto: usize) {
        if let Some(s) = self.src.get(self.pend..upto)
            && !s.is_empty()
        {
            self.emit_gap();
            self.out.push_str(s);
        }
        self.pend = upto;
    }

    /// A whitespace run `[start, end)` that cannot stay as it is in the template.
    #[inline]
    pub(super) fn gap(&mut self, start: usize, end: usize, gap: Gap) {
        self.flush(start);
        self.gap = gap;
        self.pend = end;
    }

    /// Writes `?` in place of `src[start..end]` (or of a `?` itself).
    #[inline]
    pub(super) fn placeholder(&mut self, start: usize, end: usize) {
        self.flush(start);
        self.emit_gap();
        self.out.push('?');
        self.pend = end;
        self.list = match self.list {
            List::ExpectItem(at) => List::ExpectSep(at),
            _ => List::Off,
        };
    }

    /// The `(` at `at` opens a list that may collapse; it is written now so the template
    /// length after it is known.
    #[inline]
    pub(super) fn open(&mut self, at: usize) {
        self.flush(at + 1);
        self.list = List::ExpectItem(self.out.len());
    }

    #[inline]
    pub(super) fn comma(&mut self) {
        self.list = match self.list {
            List::ExpectSep(at) => List::ExpectItem(at),
            _ => List::Off,
        };
    }

    /// The `)` at `at` closes the current list; it stays owed like any other byte.
    #[inline]
    pub(super) fn close(&mut self, at: usize) {
        if let List::ExpectSep(len) = self.list {
            // `len` was the length right after an ASCII `(`, so it is a char boundary
            self.out.truncate(len);
            self.out.push('?');
            self.pend = at;
            self.gap = Gap::None;
        }
        self.list = List::Off;
    }
}
