//! The errors of token acquisition.

use legacyflo_core::{Error, ErrorKind};

/// Why no token could be had. No variant carries a key, a secret or a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The credentials file cannot be used (a key that is not an RSA PEM, for instance).
    #[error("Source Credentials File (--source-credentials): {0}")]
    Credentials(String),
    /// The token endpoint refused the grant (`invalid_grant`, `invalid_client`,
    /// `unauthorized_client`, a wrong tenant): retrying cannot help.
    #[error("{endpoint} refused the token request for {what}: {error}{}", describe(.description))]
    Refused {
        /// The token endpoint.
        endpoint: String,
        /// Whose token.
        what: String,
        /// The OAuth2 `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The endpoint could not be reached or failed (5xx, timeout); retrying may help.
    #[error("token endpoint {endpoint}: {message}")]
    Transport {
        /// The token endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The endpoint answered something that is not a token response.
    #[error("token endpoint {endpoint}: unexpected answer: {message}")]
    Protocol {
        /// The token endpoint.
        endpoint: String,
        /// What was wrong.
        message: String,
    },
}

fn describe(d: &Option<String>) -> String {
    match d {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl OAuthError {
    /// The category the engine acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OAuthError::Credentials(_) => ErrorKind::InvalidInput,
            OAuthError::Refused { .. } => ErrorKind::Unauthenticated,
            OAuthError::Transport { .. } => ErrorKind::Temporary,
            OAuthError::Protocol { .. } => ErrorKind::Protocol,
        }
    }
}

impl From<OAuthError> for Error {
    fn from(e: OAuthError) -> Error {
        Error::backend("oauth", e.kind(), e.to_string())
    }
}
