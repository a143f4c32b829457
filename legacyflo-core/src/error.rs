//! The error type shared by every legacyflo crate's public API.

use std::fmt;
use std::time::Duration;

use crate::request::RequestErrors;

/// A boxed error from a lower layer (a protocol library, an SDK, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout legacyflo.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in categories that callers can act on.
///
/// The category decides whether the engine retries: only [`ErrorKind::Temporary`] and
/// [`ErrorKind::RateLimited`] are retried (see [`Error::is_retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A folder, file, bucket or message does not exist.
    NotFound,
    /// The credentials were refused.
    Unauthenticated,
    /// Authenticated, but the action is not allowed.
    PermissionDenied,
    /// The service asked us to slow down; retry after the hinted delay.
    RateLimited,
    /// A transient failure (dropped connection, timeout, 5xx); retrying may succeed.
    Temporary,
    /// The configuration or input is wrong; retrying cannot help.
    InvalidInput,
    /// The peer broke the protocol or sent something we cannot understand.
    Protocol,
    /// The backend cannot do what was asked.
    Unsupported,
    /// Anything else; not retried.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthenticated => "authentication failed",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Temporary => "temporary failure",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "error",
        };
        f.write_str(s)
    }
}

/// The error type of legacyflo.
///
/// Messages never contain secrets: backends must not put passwords or tokens into
/// `message` or `context`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request's parameters are wrong; each entry names the field.
    #[error("invalid request: {0}")]
    InvalidRequest(RequestErrors),
    /// A local I/O operation failed; `context` says which operation on which path.
    #[error("{context}: {source}")]
    Io {
        /// The operation and path, e.g. `open ./mail/INBOX.mbox`.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A source, sink or service failed.
    #[error("{backend}: {kind}: {message}")]
    Backend {
        /// The backend that failed, e.g. `zip`, `imap`, `s3`.
        backend: String,
        /// The category.
        kind: ErrorKind,
        /// What failed, with context (mailbox, key, command); never a secret.
        message: String,
        /// A delay the service asked for, if any.
        retry_after: Option<Duration>,
        /// The lower-level cause.
        #[source]
        source: Option<BoxError>,
    },
    /// The checkpoint state could not be read, written or understood.
    #[error("checkpoint state: {0}")]
    State(String),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Builds an [`Error::Io`] with a context string.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds an [`Error::Backend`] without a cause.
    pub fn backend(
        backend: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Builds an [`Error::Backend`] with a cause.
    pub fn backend_with(
        backend: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            kind,
            message: message.into(),
            retry_after: None,
            source: Some(source.into()),
        }
    }

    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidRequest(_) => ErrorKind::InvalidInput,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                    ErrorKind::InvalidInput
                }
                _ => ErrorKind::Other,
            },
            Error::Backend { kind, .. } => *kind,
            Error::State(_) => ErrorKind::Other,
            Error::Cancelled => ErrorKind::Other,
        }
    }

    /// Whether retrying the operation may succeed: true for temporary failures and rate limits.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Temporary | ErrorKind::RateLimited)
    }

    /// The delay the service asked for before a retry, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Backend { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this error comes from a bad request (exit code 2 in the command).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Error::InvalidRequest(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
    }

    #[test]
    fn only_temporary_and_rate_limited_retry() {
        assert!(Error::backend("x", ErrorKind::Temporary, "m").is_retryable());
        assert!(Error::backend("x", ErrorKind::RateLimited, "m").is_retryable());
        assert!(!Error::backend("x", ErrorKind::Unauthenticated, "m").is_retryable());
        assert!(!Error::io("open", std::io::Error::other("x")).is_retryable());
    }
}
