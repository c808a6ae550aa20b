//! The ack store's file handling: opening without following symlinks,
//! refusing files others can read or write, atomic replacement (temp file,
//! fsync, rename, fsync of the directory) and reading lines with a bounded
//! buffer, so a hostile or corrupt file can neither redirect writes nor
//! exhaust memory.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::AckError;

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (mode 0700) when missing. With `recursive` false only
/// `dir` itself may be created: a configured path whose grandparent is
/// missing is more likely a typo or an unmounted volume than a wish.
pub(crate) fn ensure_dir(dir: &Path, recursive: bool) -> Result<(), AckError> {
    if dir.is_dir() {
        return Ok(());
    }
    match DirBuilder::new()
        .recursive(recursive)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(AckError::io(
            "create directory (its parent does not exist)",
            dir,
            e,
        )),
        Err(e) => Err(AckError::io("create directory", dir, e)),
    }
}

/// Opens an existing store for reading; `None` when there is none yet.
/// Refuses a symlink, anything but a regular file, and a mode granting any
/// group or other permission. Checks run on the open descriptor, so the
/// file cannot be swapped between check and use.
pub(crate) fn open_existing(path: &Path) -> Result<Option<File>, AckError> {
    // O_NONBLOCK so a FIFO planted at the path cannot hang the open; it has
    // no effect on a regular file.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(AckError::Symlink {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(AckError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| AckError::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(AckError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AckError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(Some(file))
}

/// Atomically replaces `path` with `contents`: a 0600 temp file in the same
/// directory, fsynced, renamed over `path`, then the directory fsynced so
/// the rename itself survives a crash. Returns the new file opened for
/// appending, and its size. On error `path` is untouched.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<(File, u64), AckError> {
    let dir = parent_dir(path);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = dir.join(name);
    // A temp file left by a crash; removing a symlink removes the link only.
    // Looked up first: on a read-only filesystem unlinking even a missing
    // file fails with EROFS, which would blame a stale file that is not
    // there instead of the write that cannot happen.
    if std::fs::symlink_metadata(&tmp).is_ok() {
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(AckError::io("remove stale temp file", &tmp, e)),
        }
    }
    let result = write_new(&tmp, contents).and_then(|file| {
        std::fs::rename(&tmp, path).map_err(|e| AckError::io("rename temp file over", path, e))?;
        Ok(file)
    });
    let file = match result {
        Ok(file) => file,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // The rename is done and cannot be taken back, so `file` is the store
    // now. If it does not survive a crash, the old file does, and replaying
    // either gives the same acks: warn rather than fail.
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the ack store's directory");
    }
    Ok((file, contents.len() as u64))
}

fn write_new(tmp: &Path, contents: &[u8]) -> Result<File, AckError> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)
        .map_err(|e| AckError::io("create temp file", tmp, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| AckError::io("write temp file", tmp, e))?;
    Ok(file)
}

/// How a line read by [`read_line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawLine {
    /// The line had more than `max` bytes; the buffer holds the first `max`.
    pub(crate) too_long: bool,
    /// It ended with `\n`; a last line without one is a torn write.
    pub(crate) terminated: bool,
}

/// Reads the next line into `buf` (without its `\n`), keeping at most `max`
/// bytes whatever the line's length. `None` at end of input.
pub(crate) fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<RawLine>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(RawLine {
                too_long,
                terminated: false,
            }));
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = max.saturating_sub(buf.len());
        too_long |= part.len() > room;
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(RawLine {
                too_long,
                terminated: true,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    #[test]
    fn reads_lines_within_a_bound() {
        let text = b"short\n0123456789abcdef\n\ntail";
        // A tiny BufReader forces lines across several fills.
        let mut reader = BufReader::with_capacity(3, &text[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(raw) = read_line(&mut reader, &mut buf, 8).unwrap() {
            lines.push((String::from_utf8(buf.clone()).unwrap(), raw));
        }
        let line = |s: &str, too_long, terminated| {
            (
                s.to_owned(),
                RawLine {
                    too_long,
                    terminated,
                },
            )
        };
        assert_eq!(
            lines,
            [
                line("short", false, true),
                line("01234567", true, true),
                line("", false, true),
                line("tail", false, false),
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_max_bytes_is_not_too_long() {
        let mut reader = &b"12345678\n"[..];
        let mut buf = Vec::new();
        let raw = read_line(&mut reader, &mut buf, 8).unwrap().unwrap();
        assert!(!raw.too_long && raw.terminated);
        assert!(read_line(&mut reader, &mut buf, 8).unwrap().is_none());
    }

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("acks.jsonl")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/a/b.jsonl")), PathBuf::from("/a"));
    }
}
