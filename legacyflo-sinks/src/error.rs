//! The error type of the file sinks and its conversion into [`legacyflo_core::Error`].

use std::io;

use legacyflo_core::{Error, ErrorKind};

/// What went wrong in a file sink. Converted into [`legacyflo_core::Error::Backend`] with
/// the backend name (`zip`, `maildir`, `mbox`) and a category callers can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
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
    /// The resume state does not match the output on disk (or is not this sink's state).
    #[error("cannot resume: {message}")]
    State {
        /// The backend.
        backend: &'static str,
        /// What does not match.
        message: String,
    },
    /// The sink was used against its contract (write before open, write after an error
    /// without abort, …).
    #[error("{message}")]
    Misuse {
        /// The backend.
        backend: &'static str,
        /// What happened.
        message: String,
    },
    /// The request needs a sink this build does not have.
    #[error("{0} not implemented yet in this build")]
    Unsupported(String),
    /// An S3 request failed; the error names the bucket and the action, and keeps its
    /// kind (a temporary failure is retried by the engine).
    #[error(transparent)]
    S3(#[from] legacyflo_s3::S3Error),
}

impl SinkError {
    pub(crate) fn io(backend: &'static str, context: impl Into<String>, source: io::Error) -> Self {
        SinkError::Io {
            backend,
            context: context.into(),
            source,
        }
    }

    pub(crate) fn state(backend: &'static str, message: impl Into<String>) -> Self {
        SinkError::State {
            backend,
            message: message.into(),
        }
    }

    pub(crate) fn misuse(backend: &'static str, message: impl Into<String>) -> Self {
        SinkError::Misuse {
            backend,
            message: message.into(),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            SinkError::Io { backend, .. }
            | SinkError::State { backend, .. }
            | SinkError::Misuse { backend, .. } => backend,
            SinkError::Unsupported(_) => "sinks",
            SinkError::S3(_) => "s3",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            SinkError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                io::ErrorKind::Interrupted
                | io::ErrorKind::TimedOut
                | io::ErrorKind::WouldBlock => ErrorKind::Temporary,
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
                _ => ErrorKind::Other,
            },
            SinkError::State { .. } => ErrorKind::InvalidInput,
            SinkError::Misuse { .. } => ErrorKind::Other,
            SinkError::Unsupported(_) => ErrorKind::Unsupported,
            SinkError::S3(e) => e.kind(),
        }
    }
}

impl From<SinkError> for Error {
    fn from(e: SinkError) -> Error {
        if let SinkError::S3(e) = e {
            return e.into();
        }
        let backend = e.backend();
        let kind = e.kind();
        let message = e.to_string();
        match e {
            SinkError::Io { source, .. } => Error::backend_with(backend, kind, message, source),
            _ => Error::backend(backend, kind, message),
        }
    }
}

/// Result alias of this crate's internals.
pub(crate) type SinkResult<T> = std::result::Result<T, SinkError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_core() {
        let e: Error = SinkError::io(
            "zip",
            "open x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        )
        .into();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().starts_with("zip: "));
        let e: Error = SinkError::Unsupported("writing PST files is".into()).into();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("not implemented yet in this build"));
        let e: Error = SinkError::state("mbox", "x").into();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
