//! The error type of the file sources and its conversion into [`legacyflo_core::Error`].

use std::io;

use legacyflo_core::{Error, ErrorKind};

/// What went wrong in a file source. Converted into [`legacyflo_core::Error::Backend`] with
/// the backend name (`mbox`, `maildir`, `eml-zip`) and a category callers can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// The backend.
        backend: &'static str,
        /// The operation and path.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A ZIP archive could not be read.
    #[error("{context}: {source}")]
    Zip {
        /// The backend.
        backend: &'static str,
        /// The operation and path.
        context: String,
        /// The cause.
        #[source]
        source: zip::result::ZipError,
    },
    /// The input is not what the source reads (wrong format, unknown folder, bad position).
    #[error("{message}")]
    Invalid {
        /// The backend.
        backend: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The folder asked for does not exist in the input.
    #[error("no folder `{folder}` in {input}")]
    FolderNotFound {
        /// The backend.
        backend: &'static str,
        /// The folder.
        folder: String,
        /// The input path.
        input: String,
    },
    /// The request needs a source this build does not have.
    #[error("{0} not implemented yet in this build")]
    Unsupported(String),
    /// A background reader task failed.
    #[error("reader task failed: {0}")]
    Task(String),
}

impl SourceError {
    pub(crate) fn io(backend: &'static str, context: impl Into<String>, source: io::Error) -> Self {
        SourceError::Io {
            backend,
            context: context.into(),
            source,
        }
    }

    pub(crate) fn zip(
        backend: &'static str,
        context: impl Into<String>,
        source: zip::result::ZipError,
    ) -> Self {
        SourceError::Zip {
            backend,
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(backend: &'static str, message: impl Into<String>) -> Self {
        SourceError::Invalid {
            backend,
            message: message.into(),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            SourceError::Io { backend, .. }
            | SourceError::Zip { backend, .. }
            | SourceError::Invalid { backend, .. }
            | SourceError::FolderNotFound { backend, .. } => backend,
            SourceError::Unsupported(_) | SourceError::Task(_) => "sources",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Io { source, .. } => io_kind(source.kind()),
            SourceError::Zip { source, .. } => match source {
                zip::result::ZipError::Io(e) => io_kind(e.kind()),
                zip::result::ZipError::UnsupportedArchive(_) => ErrorKind::Unsupported,
                zip::result::ZipError::FileNotFound => ErrorKind::NotFound,
                _ => ErrorKind::InvalidInput,
            },
            SourceError::Invalid { .. } => ErrorKind::InvalidInput,
            SourceError::FolderNotFound { .. } => ErrorKind::NotFound,
            SourceError::Unsupported(_) => ErrorKind::Unsupported,
            SourceError::Task(_) => ErrorKind::Other,
        }
    }
}

fn io_kind(kind: io::ErrorKind) -> ErrorKind {
    match kind {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            ErrorKind::InvalidInput
        }
        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            ErrorKind::Temporary
        }
        _ => ErrorKind::Other,
    }
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Error {
        let backend = e.backend();
        let kind = e.kind();
        let message = e.to_string();
        match e {
            SourceError::Io { source, .. } => Error::backend_with(backend, kind, message, source),
            SourceError::Zip { source, .. } => Error::backend_with(backend, kind, message, source),
            _ => Error::backend(backend, kind, message),
        }
    }
}

/// Result alias of this crate's internals.
pub(crate) type SourceResult<T> = std::result::Result<T, SourceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_core() {
        let e: Error =
            SourceError::io("mbox", "open x", io::Error::from(io::ErrorKind::NotFound)).into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e: Error = SourceError::Unsupported("reading S3".into()).into();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("not implemented yet in this build"));
        let e: Error = SourceError::invalid("mbox", "bad position").into();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("mbox: "));
    }
}
