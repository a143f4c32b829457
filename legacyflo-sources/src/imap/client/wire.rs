//! The client's plumbing: sending commands (with literals), reading frames under the idle
//! timeout and the command's deadline, collecting a command's answers, and the TLS and
//! STARTTLS setup.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use imap_proto::types::{Response, ResponseCode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::warn;

use super::framer::Frame;
use super::parse::{Reply, format_internal_date, parse_frame, quote};
use super::{AppendMessage, ConnectOptions, ImapClient, ImapError, Keep, tls};

/// One part of a command: text, or a literal sent as `{n+}` (LITERAL+) or `{n}` with a
/// wait for the continuation.
pub(super) enum Part<'a> {
    Text(String),
    Literal(&'a [u8]),
}

/// Bytes read per call at most.
const READ_CHUNK: usize = 256 * 1024;

/// Bytes written per call at most (each call under the idle timeout).
const WRITE_CHUNK: usize = 1 << 20;

/// How long to wait at most for I/O now: the idle timeout, or what is left of the
/// deadline; `Err` once the deadline has passed.
fn wait_limit(
    idle: Duration,
    deadline: Instant,
    total: Duration,
    what: &str,
) -> Result<(Duration, bool), ImapError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ImapError::Deadline {
            command: what.into(),
            deadline: total,
        });
    }
    Ok(if left < idle {
        (left, true)
    } else {
        (idle, false)
    })
}

/// The error for a wait that ran out: the command's deadline, or the idle timeout.
fn expired(what: &str, by_deadline: bool, idle: Duration, deadline: Duration) -> ImapError {
    if by_deadline {
        ImapError::Deadline {
            command: what.into(),
            deadline,
        }
    } else {
        ImapError::Timeout {
            command: what.into(),
            timeout: idle,
        }
    }
}

impl ImapClient {
    pub(super) fn tag(&mut self) -> String {
        let t = format!("L{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    pub(super) async fn send(
        &mut self,
        parts: Vec<Part<'_>>,
        what: &str,
        deadline: Instant,
    ) -> Result<String, ImapError> {
        let plus = self.has_capability("LITERAL+");
        self.send_with(parts, what, plus, deadline).await
    }

    pub(super) async fn send_with(
        &mut self,
        parts: Vec<Part<'_>>,
        what: &str,
        literal_plus: bool,
        deadline: Instant,
    ) -> Result<String, ImapError> {
        let tag = self.tag();
        let mut line = format!("{tag} ");
        for part in parts {
            match part {
                Part::Text(t) => line.push_str(&t),
                Part::Literal(data) => {
                    if literal_plus {
                        let _ = write!(line, "{{{}+}}\r\n", data.len());
                        self.write(line.as_bytes(), what, deadline).await?;
                        line.clear();
                        self.write(data, what, deadline).await?;
                    } else {
                        let _ = write!(line, "{{{}}}\r\n", data.len());
                        self.write(line.as_bytes(), what, deadline).await?;
                        self.flush(what, deadline).await?;
                        line.clear();
                        self.wait_continue(what, deadline).await?;
                        self.write(data, what, deadline).await?;
                    }
                }
            }
        }
        line.push_str("\r\n");
        self.write(line.as_bytes(), what, deadline).await?;
        self.flush(what, deadline).await?;
        Ok(tag)
    }

    async fn wait_continue(&mut self, what: &str, deadline: Instant) -> Result<(), ImapError> {
        loop {
            match self.read_reply(what, deadline).await? {
                Reply::Continue(_) => return Ok(()),
                Reply::Done {
                    status,
                    code,
                    code_text,
                    text,
                    ..
                } => {
                    check_status(status, code, code_text, text, what, None)?;
                    return Err(ImapError::Protocol {
                        command: what.into(),
                        message: "command completed before its literal was sent".into(),
                    });
                }
                other => self.note_dropped(what, super::reply_kind(&other)),
            }
        }
    }

    /// Reads until the completion of `tag` (by `deadline`); returns its response code.
    /// Untagged responses go to `keep`; those it does not want are dropped and counted.
    pub(super) async fn collect(
        &mut self,
        tag: &str,
        what: &str,
        mailbox: Option<&str>,
        deadline: Instant,
        keep: Keep<'_>,
    ) -> Result<Option<ResponseCode<'static>>, ImapError> {
        loop {
            match self.read_reply(what, deadline).await? {
                Reply::Done {
                    tag: t,
                    status,
                    code,
                    code_text,
                    text,
                } => {
                    if t == tag {
                        return check_status(status, code, code_text, text, what, mailbox);
                    }
                    warn!(message = "completion for an unexpected tag", tag = %t, expected = %tag);
                }
                Reply::Untagged(Response::Data {
                    status: Status::Bye,
                    information,
                    ..
                }) => {
                    if what == "LOGOUT" {
                        continue;
                    }
                    return Err(ImapError::Bye {
                        command: with_mailbox(what, mailbox),
                        text: information.map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
                other => {
                    let kind = super::reply_kind(&other);
                    if !keep(other)? {
                        self.note_dropped(what, kind);
                    }
                }
            }
        }
    }

    /// Writes `data` in chunks, each under the idle timeout, all by `deadline`.
    pub(super) async fn write(
        &mut self,
        data: &[u8],
        what: &str,
        deadline: Instant,
    ) -> Result<(), ImapError> {
        for chunk in data.chunks(WRITE_CHUNK) {
            let (limit, by_deadline) =
                wait_limit(self.timeout, deadline, self.command_timeout, what)?;
            match tokio::time::timeout(limit, self.io.write_all(chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    return Err(ImapError::Io {
                        command: what.into(),
                        source,
                    });
                }
                Err(_) => return Err(self.timed_out(what, by_deadline)),
            }
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self, what: &str, deadline: Instant) -> Result<(), ImapError> {
        let (limit, by_deadline) = wait_limit(self.timeout, deadline, self.command_timeout, what)?;
        match tokio::time::timeout(limit, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ImapError::Io {
                command: what.into(),
                source,
            }),
            Err(_) => Err(self.timed_out(what, by_deadline)),
        }
    }

    fn timed_out(&self, what: &str, by_deadline: bool) -> ImapError {
        expired(what, by_deadline, self.timeout, self.command_timeout)
    }

    /// Reads one complete response frame by `deadline`.
    async fn read_frame(&mut self, what: &str, deadline: Instant) -> Result<Frame, ImapError> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => {
                    return Err(ImapError::Frame {
                        command: what.into(),
                        source: e,
                    });
                }
            }
            let (limit, by_deadline) =
                wait_limit(self.timeout, deadline, self.command_timeout, what)?;
            let buf = self.framer.input();
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            let read = {
                let buf = self.framer.input();
                tokio::time::timeout(limit, self.io.read_buf(buf)).await
            };
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(source)) => {
                    return Err(ImapError::Io {
                        command: what.into(),
                        source,
                    });
                }
                Err(_) => return Err(self.timed_out(what, by_deadline)),
            };
            if n == 0 {
                return Err(ImapError::Closed {
                    command: what.into(),
                });
            }
        }
    }

    pub(super) async fn read_reply(
        &mut self,
        what: &str,
        deadline: Instant,
    ) -> Result<Reply, ImapError> {
        let frame = self.read_frame(what, deadline).await?;
        Ok(parse_frame(frame))
    }
}

pub(super) fn with_mailbox(what: &str, mailbox: Option<&str>) -> String {
    match mailbox {
        Some(m) => format!("{what} `{}`", legacyflo_core::codec::mutf7_decode(m)),
        None => what.to_string(),
    }
}

pub(super) fn check_status(
    status: Status,
    code: Option<ResponseCode<'static>>,
    code_text: Option<String>,
    text: String,
    what: &str,
    mailbox: Option<&str>,
) -> Result<Option<ResponseCode<'static>>, ImapError> {
    let mailbox = mailbox.map(legacyflo_core::codec::mutf7_decode);
    match status {
        Status::Ok | Status::PreAuth => Ok(code),
        Status::No => Err(ImapError::No {
            command: what.into(),
            mailbox,
            code: code_text,
            text,
        }),
        Status::Bad => Err(ImapError::Bad {
            command: what.into(),
            mailbox,
            text,
        }),
        Status::Bye => Err(ImapError::Bye {
            command: what.into(),
            text,
        }),
    }
}

pub(super) fn push_astring<'a>(parts: &mut Vec<Part<'a>>, s: &'a str) {
    match quote(s) {
        Some(q) => parts.push(Part::Text(q)),
        None => parts.push(Part::Literal(s.as_bytes())),
    }
}

pub(super) fn push_append_args<'a>(parts: &mut Vec<Part<'a>>, m: &'a AppendMessage) {
    let flags: Vec<&str> = m
        .flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    let mut s = String::from(" ");
    if !flags.is_empty() {
        let _ = write!(s, "({}) ", flags.join(" "));
    }
    if let Some(d) = &m.internal_date {
        let _ = write!(s, "\"{}\" ", format_internal_date(d));
    }
    parts.push(Part::Text(s));
    parts.push(Part::Literal(&m.body));
}

pub(super) async fn tls_handshake(
    tcp: TcpStream,
    opts: &ConnectOptions,
    label: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let config = tls::client_config(opts.ca_file.as_deref(), opts.insecure)?;
    let name = tls::server_name(&opts.host)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let limit = opts.timeout.min(opts.command_timeout);
    match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            let is_tls = e
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            if is_tls || e.kind() == std::io::ErrorKind::InvalidData {
                Err(ImapError::Tls {
                    context: label.into(),
                    message: e.to_string(),
                })
            } else {
                Err(ImapError::Io {
                    command: format!("TLS handshake with {label}"),
                    source: e,
                })
            }
        }
        Err(_) => Err(ImapError::Timeout {
            command: format!("TLS handshake with {label}"),
            timeout: limit,
        }),
    }
}

/// Reads one line byte by byte from the plain stream (nothing may be over-read before
/// the TLS handshake), by `deadline`.
async fn read_line_plain(
    tcp: &mut TcpStream,
    what: &str,
    opts: &ConnectOptions,
    deadline: Instant,
) -> Result<String, ImapError> {
    let mut line = Vec::new();
    loop {
        let (limit, by_deadline) = wait_limit(opts.timeout, deadline, opts.command_timeout, what)?;
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(limit, tcp.read(&mut b))
            .await
            .map_err(|_| expired(what, by_deadline, limit, opts.command_timeout))?
            .map_err(|source| ImapError::Io {
                command: what.into(),
                source,
            })?;
        if n == 0 {
            return Err(ImapError::Closed {
                command: what.into(),
            });
        }
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        line.push(b[0]);
        if line.len() > 64 * 1024 {
            return Err(ImapError::Protocol {
                command: what.into(),
                message: "line too long before STARTTLS".into(),
            });
        }
    }
}

pub(super) async fn starttls_prelude(
    tcp: &mut TcpStream,
    opts: &ConnectOptions,
    label: &str,
    deadline: Instant,
) -> Result<(), ImapError> {
    let what = format!("STARTTLS with {label}");
    let greeting = read_line_plain(tcp, &what, opts, deadline).await?;
    if !greeting.to_ascii_uppercase().starts_with("* OK") {
        return Err(ImapError::Protocol {
            command: what,
            message: format!("unexpected greeting `{}`", greeting.escape_debug()),
        });
    }
    let (limit, _) = wait_limit(opts.timeout, deadline, opts.command_timeout, &what)?;
    match tokio::time::timeout(limit, tcp.write_all(b"S0 STARTTLS\r\n")).await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => {
            return Err(ImapError::Io {
                command: what.clone(),
                source,
            });
        }
        Err(_) => {
            return Err(ImapError::Timeout {
                command: what,
                timeout: limit,
            });
        }
    }
    loop {
        let line = read_line_plain(tcp, &what, opts, deadline).await?;
        if let Some(rest) = line.strip_prefix("S0 ") {
            if rest.to_ascii_uppercase().starts_with("OK") {
                return Ok(());
            }
            return Err(ImapError::Config(format!(
                "{what}: the server refused STARTTLS: {}",
                rest.escape_debug()
            )));
        }
    }
}
