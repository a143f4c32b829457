//! [`ImapError`]: what can go wrong talking IMAP, and how it maps to [`legacyflo_core::ErrorKind`].

use std::io;
use std::time::Duration;

use legacyflo_core::{Error, ErrorKind};

/// An IMAP failure. Every variant names the command (and the mailbox when there is one);
/// none carries a password or token.
///
/// Mapping to [`ErrorKind`] (see [`ImapError::kind`]): dropped connections, timeouts,
/// missed deadlines and `BYE` are `Temporary` (the engine reconnects and resumes); `NO [AUTHENTICATIONFAILED]`
/// and any refused login are `Unauthenticated`; a `NO` or `BAD` carrying Microsoft's
/// `Suggested Backoff Time: N milliseconds` (Exchange Online answers either, e.g.
/// `BAD Request is throttled. Suggested Backoff Time: 201317 milliseconds`), or a `NO
/// [LIMIT]`/`[THROTTLED]`, is `RateLimited` with that delay; `[NONEXISTENT]`/`[TRYCREATE]` are
/// `NotFound`; `[ALREADYEXISTS]` on SELECT/EXAMINE/STATUS (a server auto-creating the
/// mailbox for a concurrent session) is `Temporary`; `BAD` and unparsable input are
/// `Protocol`, as are broken framing bounds (a line that never ends); a large message
/// that cannot be written to its temporary file is `Other`; certificate and configuration
/// problems are `InvalidInput`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The socket failed (connect, read or write).
    #[error("{command}: connection failed: {source}")]
    Io {
        /// The command or step (`connect imap.example.com:993`, `UID FETCH in INBOX`).
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The server closed the connection.
    #[error("{command}: the server closed the connection")]
    Closed {
        /// The command in flight.
        command: String,
    },
    /// No answer in time.
    #[error("{command}: no answer within {0:?}", .timeout)]
    Timeout {
        /// The command in flight.
        command: String,
        /// The limit.
        timeout: Duration,
    },
    /// A command did not complete within its deadline
    /// ([`ConnectOptions::command_timeout`](super::ConnectOptions::command_timeout)), however
    /// the server paced its answer.
    #[error("{command}: not completed within its deadline of {0:?}", .deadline)]
    Deadline {
        /// The command in flight.
        command: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The server's bytes broke a bound of the framing (a line that never ends, a literal
    /// size that is not a number, a malformed `SEARCH`) or a large literal could not be
    /// held in its temporary file.
    #[error("{command}: {source}")]
    Frame {
        /// The command in flight.
        command: String,
        /// What went wrong.
        #[source]
        source: super::framer::FrameError,
    },
    /// The TLS handshake failed (an untrusted or invalid certificate, a bad CA file).
    #[error("{context}: TLS: {message}")]
    Tls {
        /// Host and port.
        context: String,
        /// What failed.
        message: String,
    },
    /// The server answered `NO`.
    #[error("{command}{}: NO {text}", mailbox_suffix(.mailbox))]
    No {
        /// The command.
        command: String,
        /// The mailbox it was about, if any.
        mailbox: Option<String>,
        /// The response code (`AUTHENTICATIONFAILED`, `TRYCREATE`, …), if any.
        code: Option<String>,
        /// The server's text.
        text: String,
    },
    /// The server answered `BAD`.
    #[error("{command}{}: BAD {text}", mailbox_suffix(.mailbox))]
    Bad {
        /// The command.
        command: String,
        /// The mailbox it was about, if any.
        mailbox: Option<String>,
        /// The server's text.
        text: String,
    },
    /// The server said `BYE`.
    #[error("{command}: server said BYE: {text}")]
    Bye {
        /// The command in flight.
        command: String,
        /// The server's text.
        text: String,
    },
    /// The server sent something we cannot understand.
    #[error("{command}: protocol error: {message}")]
    Protocol {
        /// The command in flight.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// The client was configured wrongly (no credentials, missing capability, bad CA file).
    #[error("{0}")]
    Config(String),
}

fn mailbox_suffix(m: &Option<String>) -> String {
    match m {
        Some(m) => format!(" `{m}`"),
        None => String::new(),
    }
}

/// Parses Microsoft's `Suggested Backoff Time: N milliseconds` hint.
pub fn suggested_backoff(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let idx = lower.find("suggested backoff time:")?;
    let rest = lower[idx + "suggested backoff time:".len()..].trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim_start();
    if unit.starts_with("s") && !unit.starts_with("ms") {
        Some(Duration::from_secs(n))
    } else {
        Some(Duration::from_millis(n))
    }
}

impl ImapError {
    /// The category the engine acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Io { source, .. } => match source.kind() {
                io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
                io::ErrorKind::ConnectionRefused => ErrorKind::Temporary,
                _ => ErrorKind::Temporary,
            },
            ImapError::Closed { .. }
            | ImapError::Timeout { .. }
            | ImapError::Deadline { .. }
            | ImapError::Bye { .. } => ErrorKind::Temporary,
            ImapError::Frame { source, .. } => match source {
                super::framer::FrameError::Spill(_) => ErrorKind::Other,
                _ => ErrorKind::Protocol,
            },
            ImapError::Tls { .. } | ImapError::Config(_) => ErrorKind::InvalidInput,
            ImapError::Bad { text, .. } if suggested_backoff(text).is_some() => {
                ErrorKind::RateLimited
            }
            ImapError::Bad { .. } | ImapError::Protocol { .. } => ErrorKind::Protocol,
            ImapError::No {
                command,
                code,
                text,
                ..
            } => {
                if suggested_backoff(text).is_some() {
                    return ErrorKind::RateLimited;
                }
                let code = code.as_deref().unwrap_or("").to_ascii_uppercase();
                match code.as_str() {
                    "AUTHENTICATIONFAILED" | "AUTHORIZATIONFAILED" | "EXPIRED" => {
                        ErrorKind::Unauthenticated
                    }
                    "NOPERM" => ErrorKind::PermissionDenied,
                    "NONEXISTENT" | "TRYCREATE" => ErrorKind::NotFound,
                    "LIMIT" | "THROTTLED" => ErrorKind::RateLimited,
                    "UNAVAILABLE" | "INUSE" | "SERVERBUG" => ErrorKind::Temporary,
                    // A server that creates special-use mailboxes on first access (Dovecot
                    // `auto = create|subscribe`) answers the loser of two sessions racing
                    // to open one with `[ALREADYEXISTS]`; the mailbox is there on a retry.
                    "ALREADYEXISTS"
                        if matches!(command.as_str(), "SELECT" | "EXAMINE" | "STATUS") =>
                    {
                        ErrorKind::Temporary
                    }
                    "OVERQUOTA" | "TOOBIG" => ErrorKind::Other,
                    _ if command.starts_with("LOGIN") || command.starts_with("AUTHENTICATE") => {
                        ErrorKind::Unauthenticated
                    }
                    _ => ErrorKind::Other,
                }
            }
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ImapError::No { text, .. } | ImapError::Bad { text, .. } => suggested_backoff(text),
            _ => None,
        }
    }
}

impl From<ImapError> for Error {
    fn from(e: ImapError) -> Self {
        let kind = e.kind();
        let retry_after = e.retry_after();
        Error::Backend {
            backend: "imap".to_string(),
            kind,
            message: e.to_string(),
            retry_after,
            source: Some(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let no = |cmd: &str, code: Option<&str>, text: &str| ImapError::No {
            command: cmd.into(),
            mailbox: Some("INBOX".into()),
            code: code.map(str::to_string),
            text: text.into(),
        };
        assert_eq!(
            no("LOGIN alice", Some("AUTHENTICATIONFAILED"), "x").kind(),
            ErrorKind::Unauthenticated
        );
        let o365 = no(
            "UID FETCH",
            None,
            "Request is throttled. Suggested Backoff Time: 1500 milliseconds",
        );
        assert_eq!(o365.kind(), ErrorKind::RateLimited);
        assert_eq!(o365.retry_after(), Some(Duration::from_millis(1500)));
        let core: Error = o365.into();
        assert_eq!(core.retry_after(), Some(Duration::from_millis(1500)));
        assert!(core.to_string().contains("UID FETCH `INBOX`"));
        let bad = ImapError::Bad {
            command: "UID FETCH".into(),
            mailbox: Some("INBOX".into()),
            text: "Request is throttled. Suggested Backoff Time: 201317 milliseconds".into(),
        };
        assert_eq!(bad.kind(), ErrorKind::RateLimited);
        assert_eq!(bad.retry_after(), Some(Duration::from_millis(201_317)));
        let plain_bad = ImapError::Bad {
            command: "UID FETCH".into(),
            mailbox: None,
            text: "Command Argument Error. 11".into(),
        };
        assert_eq!(plain_bad.kind(), ErrorKind::Protocol);
        assert_eq!(plain_bad.retry_after(), None);
        assert_eq!(
            ImapError::Closed {
                command: "x".into()
            }
            .kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            no("SELECT", Some("NONEXISTENT"), "x").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            no("EXAMINE", Some("ALREADYEXISTS"), "Mailbox already exists").kind(),
            ErrorKind::Temporary
        );
        assert_eq!(
            no("CREATE", Some("ALREADYEXISTS"), "Mailbox already exists").kind(),
            ErrorKind::Other
        );
    }
}
