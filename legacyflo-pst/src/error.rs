//! Errors of this crate.

use std::path::PathBuf;

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong writing or reading a PST.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error (with the file when known).
    #[error("I/O error{}: {source}", path.as_ref().map(|p| format!(" on {}", p.display())).unwrap_or_default())]
    Io {
        /// The file involved, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a PST (bad magic, unknown version).
    #[error("not a PST file: {0}")]
    NotPst(String),
    /// The PST structure is inconsistent.
    #[error("corrupt PST: {0}")]
    Corrupt(String),
    /// A page, block or the header failed an integrity check: its CRC, signature, id,
    /// size or structure does not match what refers to it. Names what was damaged, its id
    /// and file offset, and the check that failed (e.g. the stored and computed CRCs).
    #[error("damaged PST {what} {id:#x} at offset {offset:#x}: {problem}")]
    Damaged {
        /// What failed: `block`, `XBLOCK`, `subnode block`, `node B-tree page`, `header`, …
        what: &'static str,
        /// Its block or page id (0 for the header).
        id: u64,
        /// Its offset in the file.
        offset: u64,
        /// The check that failed.
        problem: String,
    },
    /// A caller-supplied value is not acceptable.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A value exceeds a format limit (e.g. a 4 GiB node stream).
    #[error("too large: {0}")]
    TooLarge(String),
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: None, source }
    }
}

/// Attaches `path` to an I/O error.
pub fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    }
}

/// `e` with `path` attached when it is an I/O error that names no file yet.
pub fn with_path(e: Error, path: &std::path::Path) -> Error {
    match e {
        Error::Io { path: None, source } => Error::Io {
            path: Some(path.to_path_buf()),
            source,
        },
        other => other,
    }
}
