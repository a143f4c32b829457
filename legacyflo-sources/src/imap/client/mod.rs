//! A small pipelined IMAP4rev1 client on `imap-proto` + tokio + rustls.
//!
//! What it does that the usual crates do not: commands are pipelined (several `UID FETCH`
//! batches in flight, `APPEND`s sent back to back with `LITERAL+`), message bodies are
//! sliced out of the receive buffer without copying (`Bytes`), `APPENDUID` is returned,
//! and every server `NO`/`BAD`/`BYE` becomes an [`ImapError`] naming the command and
//! mailbox.
//!
//! Layers: [`framer`] cuts the byte stream into complete responses within bounds (line
//! length, literal sizes, memory), [`parse`] turns them into [`Reply`]s on `imap_proto`,
//! both pure; this module sends commands and reads their answers under an idle timeout
//! and a per-command deadline ([`ConnectOptions`]). Nothing is ever sized from a number
//! the server sent: literals grow with the bytes that arrive (and move to a temporary file
//! past a threshold), UID sets are expanded only as far as the command sent, and the
//! untagged answers a command keeps are the ones it asked for; any other is dropped and
//! counted ([`ImapClient::dropped`]).

mod error;
pub mod framer;
pub mod parse;
mod tls;
mod wire;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use imap_proto::types::{MailboxDatum, Response, ResponseCode, Status};
use legacyflo_core::request::Secret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, warn};

pub use error::{ImapError, suggested_backoff};
pub use framer::{FrameError, FrameLimits, Framer, MAX_SEARCH_UIDS};
pub use parse::{
    Reply, expand_set, format_internal_date, parse_frame, parse_internal_date, parse_responses,
    quote, uid_set,
};

use parse::{caps_to_strings, list_entry, mailbox_info};
use wire::{Part, check_status, push_append_args, push_astring, starttls_prelude, tls_handshake};

/// The most mailboxes one `LIST` answer may name.
pub const MAX_LIST_ENTRIES: usize = 200_000;

/// Anything the client can talk over: a TCP stream, a TLS stream, a test double.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connect, then `STARTTLS` before anything else (port 143). Fails if the server
    /// does not offer it.
    StartTls,
    /// No TLS at all; only when asked for explicitly.
    None,
}

impl TlsMode {
    /// The default for a port: implicit on 993, STARTTLS on 143, implicit otherwise.
    pub fn default_for_port(port: u16) -> TlsMode {
        match port {
            143 => TlsMode::StartTls,
            _ => TlsMode::Implicit,
        }
    }

    /// Parses `implicit`, `starttls` or `none` (case-insensitive).
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "tls" | "ssl" => Some(TlsMode::Implicit),
            "starttls" => Some(TlsMode::StartTls),
            "none" | "plain" => Some(TlsMode::None),
            _ => None,
        }
    }
}

/// Gives OAuth2 access tokens for XOAUTH2 (the Google and Microsoft providers implement it).
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A valid access token for `user`. Called on every login, so it may refresh.
    async fn token(&self, user: &str) -> Result<Secret, ImapError>;

    /// The server refused `token` for `user` (expired, revoked): forget it, so that the
    /// next [`token`](Self::token) fetches a fresh one. The default has nothing to forget.
    async fn refused(&self, _user: &str, _token: &Secret) {}
}

/// How to log in.
#[derive(Clone)]
pub enum Credentials {
    /// `LOGIN user password`.
    Login {
        /// The login name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `AUTHENTICATE PLAIN` (RFC 4616), with an authorization identity for master-user /
    /// admin-on-behalf logins: `authzid` is the mailbox, `user` the admin.
    Plain {
        /// The mailbox to act as (authorization identity), if different from `user`.
        authzid: Option<String>,
        /// The authentication identity.
        user: String,
        /// Its password.
        password: Secret,
    },
    /// `AUTHENTICATE XOAUTH2` with a token from `provider`.
    XOAuth2 {
        /// The mailbox user.
        user: String,
        /// Where tokens come from.
        provider: Arc<dyn TokenProvider>,
    },
}

impl Credentials {
    fn describe(&self) -> String {
        match self {
            Credentials::Login { user, .. } => format!("LOGIN {user}"),
            Credentials::Plain {
                authzid: Some(a),
                user,
                ..
            } => format!("AUTHENTICATE PLAIN {a} (as {user})"),
            Credentials::Plain { user, .. } => format!("AUTHENTICATE PLAIN {user}"),
            Credentials::XOAuth2 { user, .. } => format!("AUTHENTICATE XOAUTH2 {user}"),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Where and how to connect and log in, and the bounds of every exchange.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// A PEM file of CA certificates to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. Only for tests and explicit user request.
    pub insecure: bool,
    /// The login.
    pub credentials: Credentials,
    /// Idle limit: connecting, and waiting for the next bytes of an answer (or for the
    /// server to take ours), may take at most this long. Default 60 s.
    pub timeout: Duration,
    /// Deadline of one command, from sending it to its completion, however the server
    /// paces its answer (a server trickling a byte every few seconds never trips the idle
    /// limit). Connecting and logging in together get one such deadline, but at most
    /// [`ConnectOptions::LOGIN_DEADLINE`] (a server that has not let us in by then is not
    /// going to: a silent or trickling server is abandoned there); of pipelined
    /// `UID FETCH`es, each gets it from the moment it is the oldest one still open. A
    /// command past it fails with a `Temporary` error ([`ImapError::Deadline`]): the
    /// engine reconnects and resumes after the last message received. Default
    /// [`ConnectOptions::DEFAULT_COMMAND_TIMEOUT`] (15 minutes: a 2 GiB message at 2.4 MB/s).
    pub command_timeout: Duration,
    /// What is accepted from the server ([`FrameLimits`]): the longest response line
    /// (default 1 MiB), the largest message (`literal.max_bytes`, default 2 GiB; a larger
    /// one is dropped as it arrives and reported), and the size past which a message is
    /// held in a temporary file rather than in memory (`literal.memory_threshold`, 32 MiB).
    pub frame: FrameLimits,
    /// Send `ID` with the client's name after login when the server offers it.
    pub send_id: bool,
}

impl ConnectOptions {
    /// The default [`command_timeout`](Self::command_timeout): 15 minutes.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(15 * 60);

    /// The longest that connecting, TLS, the greeting and the login may take together
    /// (30 s), or the [`command_timeout`](Self::command_timeout) when that is shorter.
    pub const LOGIN_DEADLINE: Duration = Duration::from_secs(30);

    /// Options with the default TLS mode for `port`, 60 s idle timeout, the default
    /// command deadline and frame limits, `ID` sent.
    pub fn new(host: impl Into<String>, port: u16, credentials: Credentials) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            tls: TlsMode::default_for_port(port),
            ca_file: None,
            insecure: false,
            credentials,
            timeout: Duration::from_secs(60),
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            frame: FrameLimits::default(),
            send_id: true,
        }
    }
}

/// One entry of a `LIST` answer, its name decoded from modified UTF-7.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The name as the server sent it (modified UTF-7), for later commands.
    pub raw_name: String,
    /// The name decoded to UTF-8.
    pub name: String,
    /// The hierarchy separator, if the server has one.
    pub delimiter: Option<char>,
    /// `\Noselect` / `\NonExistent`.
    pub noselect: bool,
    /// RFC 6154 special use (`\Sent`, `\All`, …).
    pub special_use: Option<String>,
    /// Every attribute as sent, e.g. `\HasChildren`.
    pub attributes: Vec<String>,
    /// The mailbox's `STATUS` (MESSAGES, UIDNEXT, UIDVALIDITY) when the server sent it
    /// with the listing (RFC 5819 LIST-STATUS); `None` otherwise and for `\Noselect`
    /// mailboxes.
    pub status: Option<MailboxInfo>,
}

/// What `SELECT`/`EXAMINE` said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Messages in the mailbox.
    pub exists: u32,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT (0 when the server did not say).
    pub uid_next: u32,
}

/// One message of a `FETCH` answer. `body` is a zero-copy slice of the receive buffer, or
/// (past the memory threshold) a map of a temporary file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchItem {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Option<u32>,
    /// `BODY[]` (or `BODY[HEADER.FIELDS …]`) data; `None` when the answer had none (a flag
    /// update) or said `NIL`.
    pub body: Option<Bytes>,
    /// Flags, as sent (`\Seen`, `$Forwarded`).
    pub flags: Vec<String>,
    /// INTERNALDATE.
    pub internal_date: Option<DateTime<Utc>>,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// Gmail X-GM-LABELS, decoded from modified UTF-7.
    pub gmail_labels: Vec<String>,
    /// Gmail X-GM-MSGID.
    pub gmail_msgid: Option<u64>,
}

/// A message to `APPEND`.
#[derive(Clone, Debug)]
pub struct AppendMessage {
    /// The bytes, sent as a literal without copying.
    pub body: Bytes,
    /// Flags (`\Seen`, keywords); `\Recent` is never sent.
    pub flags: Vec<String>,
    /// Internal date to set.
    pub internal_date: Option<DateTime<Utc>>,
}

/// A logged-in (or, for tests, greeted) IMAP connection.
pub struct ImapClient {
    io: Box<dyn Io>,
    framer: Framer,
    next_tag: u64,
    caps: Vec<String>,
    timeout: Duration,
    command_timeout: Duration,
    label: String,
    /// Untagged responses nobody asked for, dropped.
    dropped: u64,
}

impl std::fmt::Debug for ImapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapClient")
            .field("server", &self.label)
            .finish()
    }
}

/// What a command does with one untagged response: `Ok(true)` when it was wanted,
/// `Ok(false)` to drop it (counted), `Err` to give up (the connection must be dropped).
type Keep<'h> = &'h mut (dyn FnMut(Reply) -> Result<bool, ImapError> + Send);

impl ImapClient {
    /// Connects, secures the connection as `opts.tls` says, logs in, and learns the
    /// capabilities, all within [`ConnectOptions::LOGIN_DEADLINE`] (or the
    /// [`ConnectOptions::command_timeout`] when shorter). TCP_NODELAY is
    /// set. Errors: connection problems and deadlines are `Temporary`, a refused login
    /// `Unauthenticated`, an untrusted certificate `InvalidInput`.
    pub async fn connect(opts: &ConnectOptions) -> Result<ImapClient, ImapError> {
        let label = format!("{}:{}", opts.host, opts.port);
        let ctx = format!("connect {label}");
        let login_deadline = opts.command_timeout.min(ConnectOptions::LOGIN_DEADLINE);
        let deadline = Instant::now() + login_deadline;
        let limit = opts.timeout.min(login_deadline);
        let tcp = tokio::time::timeout(limit, TcpStream::connect((opts.host.as_str(), opts.port)))
            .await
            .map_err(|_| ImapError::Timeout {
                command: ctx.clone(),
                timeout: limit,
            })?
            .map_err(|source| ImapError::Io {
                command: ctx.clone(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| ImapError::Io {
            command: ctx.clone(),
            source,
        })?;
        let io: Box<dyn Io> = match opts.tls {
            TlsMode::None => Box::new(tcp),
            TlsMode::Implicit => Box::new(tls_handshake(tcp, opts, &label).await?),
            TlsMode::StartTls => {
                let mut tcp = tcp;
                starttls_prelude(&mut tcp, opts, &label, deadline).await?;
                Box::new(tls_handshake(tcp, opts, &label).await?)
            }
        };
        let mut client = ImapClient::new(io, opts.timeout, label);
        // The login's deadline is what errors name until the login is done.
        client.command_timeout = login_deadline;
        client.framer = Framer::new(opts.frame.clone());
        if opts.tls != TlsMode::StartTls {
            client.greeting_by(deadline).await?;
        }
        // A greeting with `[CAPABILITY …]` (Dovecot's, and most servers') saves the round
        // trip; after STARTTLS the capabilities must be asked again (RFC 3501 6.2.1).
        if client.caps.is_empty() {
            client.capability_by(deadline).await?;
        }
        client.authenticate_by(&opts.credentials, deadline).await?;
        if opts.send_id && client.has_capability("ID") {
            // Some servers (and provider throttles) want to know who is calling; failure is
            // harmless, but not a deadline: the connection is then unusable.
            let tag = client
                .send(
                    vec![Part::Text(
                        "ID (\"name\" \"legacyflo\" \"version\" \"0.1\")".into(),
                    )],
                    "ID",
                    deadline,
                )
                .await?;
            match client
                .collect(&tag, "ID", None, deadline, &mut |_| Ok(true))
                .await
            {
                Ok(_) => {}
                Err(e @ (ImapError::No { .. } | ImapError::Bad { .. })) => {
                    debug!(message = "ID refused", error = %e);
                }
                Err(e) => return Err(e),
            }
        }
        client.command_timeout = opts.command_timeout;
        Ok(client)
    }

    /// Wraps an already connected stream (tests replay transcripts through this), with
    /// the default command deadline and frame limits. Call
    /// [`read_greeting`](Self::read_greeting) next.
    pub fn new(io: Box<dyn Io>, timeout: Duration, label: impl Into<String>) -> ImapClient {
        ImapClient {
            io,
            framer: Framer::new(FrameLimits::default()),
            next_tag: 1,
            caps: Vec::new(),
            timeout,
            command_timeout: ConnectOptions::DEFAULT_COMMAND_TIMEOUT,
            label: label.into(),
            dropped: 0,
        }
    }

    /// Sets the per-command deadline and the frame limits (for [`new`](Self::new)).
    pub fn with_limits(mut self, command_timeout: Duration, frame: FrameLimits) -> ImapClient {
        self.command_timeout = command_timeout;
        self.framer = Framer::new(frame);
        self
    }

    /// The per-command deadline ([`ConnectOptions::command_timeout`]).
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// The deadline of a command started now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.command_timeout
    }

    /// Untagged responses dropped so far because no command asked for them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Counts a response nobody asked for (`kind` of [`reply_kind`]); the first one of a
    /// connection is logged, the others only counted.
    pub fn note_dropped(&mut self, what: &str, kind: &str) {
        self.dropped += 1;
        if self.dropped == 1 {
            warn!(message = "dropping a response nobody asked for (further ones are only counted)", server = %self.label, command = %what, response = %kind);
        }
    }

    /// Reads the greeting; `BYE` is an error, capabilities in it are kept.
    pub async fn read_greeting(&mut self) -> Result<(), ImapError> {
        let deadline = self.deadline();
        self.greeting_by(deadline).await
    }

    async fn greeting_by(&mut self, deadline: Instant) -> Result<(), ImapError> {
        match self.read_reply("greeting", deadline).await? {
            Reply::Untagged(Response::Data {
                status,
                code,
                information,
            }) => match status {
                Status::Ok | Status::PreAuth => {
                    if let Some(ResponseCode::Capabilities(c)) = code {
                        self.caps = caps_to_strings(&c);
                    }
                    Ok(())
                }
                _ => Err(ImapError::Bye {
                    command: "greeting".into(),
                    text: information.map(|s| s.to_string()).unwrap_or_default(),
                }),
            },
            other => Err(ImapError::Protocol {
                command: "greeting".into(),
                message: format!("unexpected greeting ({})", reply_kind(&other)),
            }),
        }
    }

    /// The capabilities last announced (upper-case atoms, `AUTH=PLAIN` style).
    pub fn capabilities(&self) -> &[String] {
        &self.caps
    }

    /// Whether the server announced `cap` (case-insensitive).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> &str {
        &self.label
    }

    /// Sends `CAPABILITY` and stores the answer.
    pub async fn capability(&mut self) -> Result<(), ImapError> {
        let deadline = self.deadline();
        self.capability_by(deadline).await
    }

    async fn capability_by(&mut self, deadline: Instant) -> Result<(), ImapError> {
        let tag = self
            .send(
                vec![Part::Text("CAPABILITY".into())],
                "CAPABILITY",
                deadline,
            )
            .await?;
        let mut caps = None;
        self.collect(&tag, "CAPABILITY", None, deadline, &mut |r| match r {
            Reply::Untagged(Response::Capabilities(c)) => {
                caps = Some(caps_to_strings(&c));
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
        if let Some(c) = caps {
            self.caps = c;
        }
        Ok(())
    }

    /// Logs in with `creds`.
    pub async fn authenticate(&mut self, creds: &Credentials) -> Result<(), ImapError> {
        let deadline = self.deadline();
        self.authenticate_by(creds, deadline).await
    }

    async fn authenticate_by(
        &mut self,
        creds: &Credentials,
        deadline: Instant,
    ) -> Result<(), ImapError> {
        let what = creds.describe();
        let done = match creds {
            Credentials::Login { user, password } => {
                if self.has_capability("LOGINDISABLED") {
                    return Err(ImapError::Config(format!(
                        "{what}: the server disables LOGIN on this connection (use TLS)"
                    )));
                }
                let mut parts = vec![Part::Text("LOGIN ".into())];
                push_astring(&mut parts, user);
                parts.push(Part::Text(" ".into()));
                push_astring(&mut parts, password.expose());
                let tag = self.send(parts, &what, deadline).await?;
                self.collect(&tag, &what, None, deadline, &mut capabilities_only())
                    .await?
            }
            Credentials::Plain {
                authzid,
                user,
                password,
            } => {
                let raw = format!(
                    "{}\0{}\0{}",
                    authzid.as_deref().unwrap_or(""),
                    user,
                    password.expose()
                );
                self.sasl("PLAIN", &raw, &what, deadline).await?
            }
            Credentials::XOAuth2 { user, provider } => {
                let raw =
                    |t: &Secret| format!("user={}\x01auth=Bearer {}\x01\x01", user, t.expose());
                let token = provider.token(user).await?;
                match self.sasl("XOAUTH2", &raw(&token), &what, deadline).await {
                    // A cached token the server no longer takes (expired early, revoked):
                    // drop it and try once more with a fresh one.
                    Err(ImapError::No { .. }) => {
                        debug!(server = %self.label, how = %what, "token refused: fetching a fresh one");
                        provider.refused(user, &token).await;
                        let fresh = provider.token(user).await?;
                        self.sasl("XOAUTH2", &raw(&fresh), &what, deadline).await?
                    }
                    r => r?,
                }
            }
        };
        match done {
            Some(ResponseCode::Capabilities(c)) => self.caps = caps_to_strings(&c),
            _ => self.capability_by(deadline).await?,
        }
        debug!(message = "logged in", server = %self.label, how = %what);
        Ok(())
    }

    async fn sasl(
        &mut self,
        mech: &str,
        raw: &str,
        what: &str,
        deadline: Instant,
    ) -> Result<Option<ResponseCode<'static>>, ImapError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
        let tag = self.tag();
        let ir = self.has_capability("SASL-IR");
        let line = if ir {
            format!("{tag} AUTHENTICATE {mech} {b64}\r\n")
        } else {
            format!("{tag} AUTHENTICATE {mech}\r\n")
        };
        self.write(line.as_bytes(), what, deadline).await?;
        self.flush(what, deadline).await?;
        let mut sent = ir;
        loop {
            match self.read_reply(what, deadline).await? {
                Reply::Continue(_) => {
                    // First `+`: send the response; a later one is an error challenge
                    // (XOAUTH2 sends JSON) answered with an empty line.
                    let reply = if sent { String::new() } else { b64.clone() };
                    sent = true;
                    self.write(format!("{reply}\r\n").as_bytes(), what, deadline)
                        .await?;
                    self.flush(what, deadline).await?;
                }
                Reply::Done {
                    tag: t,
                    status,
                    code,
                    code_text,
                    text,
                } if t == tag => {
                    return check_status(status, code, code_text, text, what, None);
                }
                Reply::Untagged(Response::Data {
                    status: Status::Bye,
                    information,
                    ..
                }) => {
                    return Err(ImapError::Bye {
                        command: what.into(),
                        text: information.map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
                Reply::Untagged(Response::Capabilities(_)) => {}
                other => self.note_dropped(what, reply_kind(&other)),
            }
        }
    }

    /// Sends `command` (no literals) and waits for its completion within the deadline,
    /// dropping every untagged response. `NO`/`BAD` become errors naming `what` and
    /// `mailbox`.
    pub async fn simple(
        &mut self,
        command: &str,
        what: &str,
        mailbox: Option<&str>,
    ) -> Result<(), ImapError> {
        let deadline = self.deadline();
        let tag = self
            .send(vec![Part::Text(command.to_string())], what, deadline)
            .await?;
        self.collect(&tag, what, mailbox, deadline, &mut |_| Ok(false))
            .await
            .map(|_| ())
    }

    /// `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has SPECIAL-USE and
    /// `RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY))` when it has LIST-STATUS (RFC 5819),
    /// so that one round trip also tells what every mailbox holds
    /// ([`ListEntry::status`]). At most [`MAX_LIST_ENTRIES`] mailboxes.
    pub async fn list(&mut self) -> Result<Vec<ListEntry>, ImapError> {
        let extended = self.has_capability("LIST-EXTENDED");
        let mut ret = Vec::new();
        if extended && self.has_capability("SPECIAL-USE") {
            ret.push("SPECIAL-USE");
        }
        if self.has_capability("LIST-STATUS") {
            ret.push("STATUS (MESSAGES UIDNEXT UIDVALIDITY)");
        }
        let cmd = if ret.is_empty() {
            "LIST \"\" \"*\"".to_string()
        } else {
            format!("LIST \"\" \"*\" RETURN ({})", ret.join(" "))
        };
        let deadline = self.deadline();
        let tag = self.send(vec![Part::Text(cmd)], "LIST", deadline).await?;
        let mut entries = Vec::new();
        let mut statuses = HashMap::new();
        self.collect(&tag, "LIST", None, deadline, &mut |r| {
            if entries.len() + statuses.len() >= 2 * MAX_LIST_ENTRIES {
                return Err(ImapError::Protocol {
                    command: "LIST".into(),
                    message: format!("more than {MAX_LIST_ENTRIES} mailboxes"),
                });
            }
            match r {
                Reply::Untagged(Response::MailboxData(MailboxDatum::Status {
                    mailbox,
                    status,
                })) => {
                    statuses.insert(mailbox.to_string(), mailbox_info(&status));
                    Ok(true)
                }
                r => match list_entry(&r) {
                    Some(e) => {
                        entries.push(e);
                        Ok(true)
                    }
                    None => Ok(false),
                },
            }
        })
        .await?;
        for e in &mut entries {
            if e.noselect {
                continue;
            }
            e.status = statuses.get(&e.raw_name).copied().or_else(|| {
                e.raw_name
                    .eq_ignore_ascii_case("INBOX")
                    .then(|| {
                        statuses
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("INBOX"))
                            .map(|(_, v)| *v)
                    })
                    .flatten()
            });
        }
        Ok(entries)
    }

    /// The hierarchy separator (`LIST "" ""`), if the server has one.
    pub async fn separator(&mut self) -> Result<Option<char>, ImapError> {
        let deadline = self.deadline();
        let tag = self
            .send(vec![Part::Text("LIST \"\" \"\"".into())], "LIST", deadline)
            .await?;
        let mut sep = None;
        self.collect(
            &tag,
            "LIST",
            None,
            deadline,
            &mut |r| match list_entry(&r) {
                Some(e) => {
                    sep = sep.or(e.delimiter);
                    Ok(true)
                }
                None => Ok(false),
            },
        )
        .await?;
        Ok(sep)
    }

    /// `SELECT` (or `EXAMINE` when `read_only`) of `mailbox` (modified UTF-7 name).
    pub async fn select(
        &mut self,
        mailbox: &str,
        read_only: bool,
    ) -> Result<MailboxInfo, ImapError> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let mut parts = vec![Part::Text(format!("{verb} "))];
        push_astring(&mut parts, mailbox);
        let deadline = self.deadline();
        let tag = self.send(parts, verb, deadline).await?;
        let mut info = MailboxInfo::default();
        self.collect(&tag, verb, Some(mailbox), deadline, &mut |r| {
            Ok(match r {
                Reply::Untagged(Response::MailboxData(MailboxDatum::Exists(n))) => {
                    info.exists = n;
                    true
                }
                Reply::Untagged(Response::Data {
                    code: Some(code), ..
                }) => match code {
                    ResponseCode::UidValidity(v) => {
                        info.uid_validity = v;
                        true
                    }
                    ResponseCode::UidNext(n) => {
                        info.uid_next = n;
                        true
                    }
                    _ => true,
                },
                Reply::Untagged(Response::MailboxData(_))
                | Reply::Untagged(Response::Data { .. }) => true,
                _ => false,
            })
        })
        .await?;
        Ok(info)
    }

    /// `STATUS mailbox (UIDVALIDITY UIDNEXT MESSAGES)`.
    pub async fn status(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        let mut parts = vec![Part::Text("STATUS ".into())];
        push_astring(&mut parts, mailbox);
        parts.push(Part::Text(" (UIDVALIDITY UIDNEXT MESSAGES)".into()));
        let deadline = self.deadline();
        let tag = self.send(parts, "STATUS", deadline).await?;
        let mut info = MailboxInfo::default();
        self.collect(&tag, "STATUS", Some(mailbox), deadline, &mut |r| match r {
            Reply::Untagged(Response::MailboxData(MailboxDatum::Status { status, .. })) => {
                info = mailbox_info(&status);
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
        Ok(info)
    }

    /// `UID SEARCH criteria` in the selected `mailbox`; UIDs ascending, at most
    /// [`MAX_SEARCH_UIDS`].
    pub async fn uid_search(
        &mut self,
        criteria: &str,
        mailbox: &str,
    ) -> Result<Vec<u32>, ImapError> {
        let deadline = self.deadline();
        let tag = self
            .send(
                vec![Part::Text(format!("UID SEARCH {criteria}"))],
                "UID SEARCH",
                deadline,
            )
            .await?;
        let mut uids = Vec::new();
        self.collect(
            &tag,
            "UID SEARCH",
            Some(mailbox),
            deadline,
            &mut |r| match r {
                Reply::Untagged(Response::MailboxData(MailboxDatum::Search(v))) => {
                    if uids.len() + v.len() > MAX_SEARCH_UIDS {
                        return Err(ImapError::Protocol {
                            command: "UID SEARCH".into(),
                            message: format!("more than {MAX_SEARCH_UIDS} UIDs"),
                        });
                    }
                    uids.extend(v);
                    Ok(true)
                }
                _ => Ok(false),
            },
        )
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Sends `UID FETCH set items` without waiting; returns the tag. Read the answers with
    /// [`next_reply`](Self::next_reply) (pipelining: several may be in flight).
    pub async fn send_uid_fetch(&mut self, set: &str, items: &str) -> Result<String, ImapError> {
        let deadline = self.deadline();
        self.send(
            vec![Part::Text(format!("UID FETCH {set} {items}"))],
            "UID FETCH",
            deadline,
        )
        .await
    }

    /// Reads the next response, waiting until `deadline` at most (for pipelined commands,
    /// whose caller keeps the deadlines). `what` names the command in errors.
    pub async fn next_reply(&mut self, what: &str, deadline: Instant) -> Result<Reply, ImapError> {
        self.read_reply(what, deadline).await
    }

    /// `UID FETCH set items` in the selected `mailbox`: every FETCH answer is handed to
    /// `each` as it arrives (nothing is collected here); other responses are dropped.
    /// Answers for UIDs outside `set` may come (servers send flag updates): `each` checks.
    pub async fn uid_fetch_each(
        &mut self,
        set: &str,
        items: &str,
        mailbox: &str,
        each: &mut (dyn FnMut(FetchItem) + Send),
    ) -> Result<(), ImapError> {
        let deadline = self.deadline();
        let tag = self
            .send(
                vec![Part::Text(format!("UID FETCH {set} {items}"))],
                "UID FETCH",
                deadline,
            )
            .await?;
        self.collect(
            &tag,
            "UID FETCH",
            Some(mailbox),
            deadline,
            &mut |r| match r {
                Reply::Fetch(f) => {
                    each(f);
                    Ok(true)
                }
                _ => Ok(false),
            },
        )
        .await
        .map(|_| ())
    }

    /// `CREATE mailbox`; a mailbox that already exists is fine.
    pub async fn create(&mut self, mailbox: &str) -> Result<(), ImapError> {
        let mut parts = vec![Part::Text("CREATE ".into())];
        push_astring(&mut parts, mailbox);
        let deadline = self.deadline();
        let tag = self.send(parts, "CREATE", deadline).await?;
        match self
            .collect(&tag, "CREATE", Some(mailbox), deadline, &mut |_| Ok(false))
            .await
        {
            Ok(_) => Ok(()),
            Err(ImapError::No { code, .. })
                if code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("ALREADYEXISTS")) =>
            {
                Ok(())
            }
            Err(e @ ImapError::No { .. }) => {
                // Servers without ALREADYEXISTS: fine if it now exists.
                match self.status(mailbox).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Appends `messages` to `mailbox`: one MULTIAPPEND command when the server offers it,
    /// else pipelined `APPEND`s (with `LITERAL+` when offered; without it each literal
    /// waits for the continuation). Returns one `(uidvalidity, uid)` per message when the
    /// server gives APPENDUID (UIDPLUS), in order. An APPENDUID naming more UIDs than
    /// messages were sent is a `Protocol` error (never expanded). All-or-error: on `Err`
    /// some of the messages may have been stored (an IMAP server cannot un-append).
    pub async fn append(
        &mut self,
        mailbox: &str,
        messages: &[AppendMessage],
    ) -> Result<Vec<Option<(u32, u32)>>, ImapError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let plus = self.has_capability("LITERAL+");
        let multi = self.has_capability("MULTIAPPEND") && messages.len() > 1;
        let mut out = Vec::with_capacity(messages.len());
        if multi {
            let mut parts = vec![Part::Text("APPEND ".into())];
            push_astring(&mut parts, mailbox);
            for m in messages {
                push_append_args(&mut parts, m);
            }
            let deadline = self.deadline();
            let tag = self.send_with(parts, "APPEND", plus, deadline).await?;
            let done = self
                .collect(&tag, "APPEND", Some(mailbox), deadline, &mut |_| Ok(false))
                .await?;
            let uids = match done {
                Some(ResponseCode::AppendUid(v, set)) => appended(v, &set, messages.len())?,
                _ => Vec::new(),
            };
            if uids.len() == messages.len() {
                out = uids;
            } else {
                out.resize(messages.len(), None);
            }
            return Ok(out);
        }
        let mut tags = Vec::with_capacity(messages.len());
        for m in messages {
            let mut parts = vec![Part::Text("APPEND ".into())];
            push_astring(&mut parts, mailbox);
            push_append_args(&mut parts, m);
            let deadline = self.deadline();
            tags.push(self.send_with(parts, "APPEND", plus, deadline).await?);
        }
        let mut first_err = None;
        for tag in tags {
            let deadline = self.deadline();
            match self
                .collect(&tag, "APPEND", Some(mailbox), deadline, &mut |_| Ok(false))
                .await
            {
                Ok(Some(ResponseCode::AppendUid(v, set))) => {
                    out.push(appended(v, &set, 1)?.first().copied().flatten())
                }
                Ok(_) => out.push(None),
                Err(e) => {
                    if matches!(e, ImapError::No { .. } | ImapError::Bad { .. }) {
                        if first_err.is_none() {
                            first_err = Some(e);
                        }
                        out.push(None);
                    } else {
                        return Err(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// `LOGOUT`, ignoring errors (the connection is closed either way).
    pub async fn logout(mut self) {
        let _ = self.simple("LOGOUT", "LOGOUT", None).await;
    }
}

/// The `(uidvalidity, uid)` of each of `count` appended messages from an APPENDUID.
fn appended(
    v: u32,
    set: &[imap_proto::types::UidSetMember],
    count: usize,
) -> Result<Vec<Option<(u32, u32)>>, ImapError> {
    expand_set(set, count)
        .map(|uids| uids.into_iter().map(|u| Some((v, u))).collect())
        .map_err(|message| ImapError::Protocol {
            command: "APPEND".into(),
            message: format!("APPENDUID: {message}"),
        })
}

/// A login's untagged answers: `CAPABILITY` is expected, the rest is dropped.
fn capabilities_only() -> impl FnMut(Reply) -> Result<bool, ImapError> + Send {
    |r| Ok(matches!(r, Reply::Untagged(Response::Capabilities(_))))
}

/// What kind of reply `r` is, for logs (never its data).
pub fn reply_kind(r: &Reply) -> &'static str {
    match r {
        Reply::Done { .. } => "tagged completion",
        Reply::Continue(_) => "continuation",
        Reply::Fetch(f) if f.body.is_some() => "FETCH with a body",
        Reply::Fetch(_) => "FETCH without a body",
        Reply::Untagged(Response::MailboxData(_)) => "mailbox data",
        Reply::Untagged(_) => "untagged response",
        Reply::Oversized { .. } => "oversized literal",
        Reply::Unparsed(_) => "unparsable response",
    }
}

#[cfg(test)]
mod tests;
