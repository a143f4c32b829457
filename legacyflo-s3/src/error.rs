//! [`S3Error`]: what can go wrong talking to S3, always naming the bucket and the action.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use legacyflo_core::{Error, ErrorKind};

/// An S3 failure. Every variant names the bucket and the S3 action (API operation) that
/// failed, so a user can fix the bucket policy or credentials; secrets never appear.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The bucket does not exist (or is not visible to these credentials).
    #[error("bucket `{bucket}` does not exist ({action} answered NoSuchBucket)")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The refused action, e.g. `HeadBucket`.
        action: &'static str,
    },
    /// The credentials were not accepted (unknown key, bad signature, expired token, none).
    #[error("{action} on bucket `{bucket}`: the credentials were refused: {detail}")]
    BadCredentials {
        /// The bucket.
        bucket: String,
        /// The refused action.
        action: &'static str,
        /// The server's code and message.
        detail: String,
    },
    /// The credentials are valid but lack the permission for the action.
    #[error("{action} on bucket `{bucket}` was denied: {detail}")]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// The refused action.
        action: &'static str,
        /// The server's code and message.
        detail: String,
    },
    /// The object does not exist.
    #[error("object s3://{bucket}/{key} does not exist")]
    NoSuchKey {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The multipart upload is gone: aborted, completed, or expired by a lifecycle rule.
    #[error(
        "multipart upload {upload_id} of s3://{bucket}/{key} does not exist (aborted, completed or expired)"
    )]
    NoSuchUpload {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The upload id.
        upload_id: String,
    },
    /// The data did not match its checksum (sent or received).
    #[error("{action} of s3://{bucket}/{key}: checksum mismatch: {detail}")]
    Checksum {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The action.
        action: &'static str,
        /// What differed.
        detail: String,
    },
    /// A failure worth retrying: connection, timeout, throttling, 5xx.
    #[error("{action} on bucket `{bucket}` failed (temporary): {detail}")]
    Temporary {
        /// The bucket.
        bucket: String,
        /// The action.
        action: &'static str,
        /// What happened.
        detail: String,
    },
    /// Any other answer.
    #[error("{action} on bucket `{bucket}` failed: {detail}")]
    Other {
        /// The bucket.
        bucket: String,
        /// The action.
        action: &'static str,
        /// What happened.
        detail: String,
    },
    /// A local file operation (spool, upload source, download target) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type S3Result<T> = std::result::Result<T, S3Error>;

impl S3Error {
    /// Classifies an SDK error of `action` on `bucket` (and `key`, for object actions).
    pub fn from_sdk<E, R>(
        err: SdkError<E, R>,
        action: &'static str,
        bucket: &str,
        key: Option<&str>,
    ) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        let bucket = bucket.to_string();
        let status = err.raw_response().map(HttpStatus::status_code);
        let (code, message) = match &err {
            SdkError::ServiceError(se) => (
                se.err().code().map(str::to_string),
                se.err().message().map(str::to_string),
            ),
            _ => (None, None),
        };
        let detail = describe(&err, code.as_deref(), message.as_deref(), status);
        match &err {
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                return S3Error::Temporary {
                    bucket,
                    action,
                    detail,
                };
            }
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                return S3Error::Temporary {
                    bucket,
                    action,
                    detail,
                };
            }
            SdkError::ConstructionFailure(_) => {
                // Typically: no credentials could be found by the credential chain.
                return S3Error::BadCredentials {
                    bucket,
                    action,
                    detail,
                };
            }
            _ => {}
        }
        match code.as_deref() {
            Some("NoSuchBucket") => return S3Error::NoSuchBucket { bucket, action },
            Some("NoSuchKey") => {
                return S3Error::NoSuchKey {
                    bucket,
                    key: key.unwrap_or_default().to_string(),
                };
            }
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired",
            ) => {
                return S3Error::BadCredentials {
                    bucket,
                    action,
                    detail,
                };
            }
            Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem") => {
                return S3Error::AccessDenied {
                    bucket,
                    action,
                    detail,
                };
            }
            Some("BadDigest" | "InvalidDigest" | "XAmzContentChecksumMismatch") => {
                return S3Error::Checksum {
                    bucket,
                    key: key.unwrap_or_default().to_string(),
                    action,
                    detail,
                };
            }
            Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout") => {
                return S3Error::Temporary {
                    bucket,
                    action,
                    detail,
                };
            }
            _ => {}
        }
        match status {
            // HEAD answers carry no body, so only the status tells.
            Some(404) if key.is_none() => S3Error::NoSuchBucket { bucket, action },
            Some(404) => S3Error::NoSuchKey {
                bucket,
                key: key.unwrap_or_default().to_string(),
            },
            Some(401) => S3Error::BadCredentials {
                bucket,
                action,
                detail,
            },
            Some(403) => S3Error::AccessDenied {
                bucket,
                action,
                detail: format!("{detail} (wrong credentials, or no permission for {action})"),
            },
            Some(s) if s >= 500 || s == 429 => S3Error::Temporary {
                bucket,
                action,
                detail,
            },
            _ => S3Error::Other {
                bucket,
                action,
                detail,
            },
        }
    }

    /// A local I/O error.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> S3Error {
        S3Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The kind in the shared error model; drives exit codes and retries.
    pub fn kind(&self) -> ErrorKind {
        match self {
            S3Error::NoSuchBucket { .. }
            | S3Error::NoSuchKey { .. }
            | S3Error::NoSuchUpload { .. } => ErrorKind::NotFound,
            S3Error::BadCredentials { .. } => ErrorKind::Unauthenticated,
            S3Error::AccessDenied { .. } => ErrorKind::PermissionDenied,
            S3Error::Checksum { .. } => ErrorKind::Protocol,
            S3Error::Temporary { .. } => ErrorKind::Temporary,
            S3Error::Other { .. } => ErrorKind::Other,
            S3Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Other,
            },
        }
    }
}

impl From<S3Error> for Error {
    fn from(e: S3Error) -> Error {
        let kind = e.kind();
        Error::backend_with("s3", kind, e.to_string(), e)
    }
}

/// Access to the HTTP status of a raw response (implemented for the SDK's response type).
pub trait HttpStatus {
    /// The status code.
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn describe<E, R>(
    err: &SdkError<E, R>,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut parts = Vec::new();
    if let Some(c) = code {
        parts.push(c.to_string());
    }
    if let Some(m) = message {
        parts.push(m.to_string());
    }
    if let Some(s) = status {
        parts.push(format!("HTTP {s}"));
    }
    if parts.is_empty() {
        // Walk the source chain: dispatch and credential errors keep the cause there.
        let mut text = err.to_string();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
        while let Some(c) = cur {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cur = c.source();
        }
        return text;
    }
    parts.join(": ")
}
