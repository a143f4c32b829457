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
