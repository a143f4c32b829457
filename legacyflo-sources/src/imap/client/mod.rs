//! A small pipelined IMAP4rev1 client on `imap-proto` + tokio + rustls.
//!
//! What it does that the usual crates do not: commands are pipelined (several `UID FETCH`
//! batches in flight, `APPEND`s sent back to back with `LITERAL+`), message bodies are
//! sliced out of the receive buffer without copying (`Bytes`), `APPENDUID` is returned,
//! and every server `NO`/`BAD`/`BYE` becomes an [`ImapError`] naming the command and
//! mailbox.
//!
//! Framing: the receive buffer is scanned for complete responses (a line, or a line ending
//! in a `{n}` literal plus `n` bytes and the rest), so `imap_proto::parser::parse_response`
//! only ever sees complete input and big literals are not re-parsed on every read.

mod error;
mod tls;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use imap_proto::types::{
    AttributeValue, Capability, MailboxDatum, NameAttribute, Response, ResponseCode, Status,
    UidSetMember,
};
use legacyflo_core::request::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

pub use error::{ImapError, suggested_backoff};

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

/// Where and how to connect and log in.
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
    /// Limit for connecting and for waiting on any single response.
    pub timeout: Duration,
    /// Send `ID` with the client's name after login when the server offers it.
    pub send_id: bool,
}

impl ConnectOptions {
    /// Options with the default TLS mode for `port`, 60 s timeout, `ID` sent.
    pub fn new(host: impl Into<String>, port: u16, credentials: Credentials) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            tls: TlsMode::default_for_port(port),
            ca_file: None,
            insecure: false,
            credentials,
            timeout: Duration::from_secs(60),
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

/// One message of a `FETCH` answer. `body` is a zero-copy slice of the receive buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchItem {
    /// Sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Option<u32>,
    /// `BODY[]` (or `BODY[HEADER.FIELDS …]`) data.
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

/// A server response, owned.
#[derive(Debug)]
pub enum Reply {
    /// A tagged completion.
    Done {
        /// The tag.
        tag: String,
        /// OK / NO / BAD.
        status: Status,
        /// The response code, when imap-proto knows it.
        code: Option<ResponseCode<'static>>,
        /// The bracketed code as text (`AUTHENTICATIONFAILED`), also for codes imap-proto
        /// does not know.
        code_text: Option<String>,
        /// The human-readable text.
        text: String,
    },
    /// A `+` continuation request.
    Continue(String),
    /// An untagged FETCH.
    Fetch(FetchItem),
    /// Any other untagged response.
    Untagged(Response<'static>),
    /// An untagged response imap-proto could not parse (kept for logging).
    Unparsed(Bytes),
}

/// Parses an IMAP date-time (`17-Jul-1996 02:44:25 -0700`).
pub fn parse_internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Formats an IMAP date-time in UTC.
pub fn format_internal_date(d: &DateTime<Utc>) -> String {
    d.format("%d-%b-%Y %H:%M:%S +0000").to_string()
}

/// A quoted string for a command argument (`"` and `\` escaped). Returns `None` when the
/// value needs a literal (CR, LF, NUL or non-ASCII).
pub fn quote(s: &str) -> Option<String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A compact UID set (`1:5,7,9:12`) of ascending `uids`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

/// One part of a command: text, or a literal sent as `{n+}` (LITERAL+) or `{n}` with a
/// wait for the continuation.
enum Part<'a> {
    Text(String),
    Literal(&'a [u8]),
}

/// A logged-in (or, for tests, greeted) IMAP connection.
pub struct ImapClient {
    io: Box<dyn Io>,
    buf: BytesMut,
    scan: usize,
    next_tag: u64,
    caps: Vec<String>,
    timeout: Duration,
    label: String,
}

impl std::fmt::Debug for ImapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapClient")
            .field("server", &self.label)
            .finish()
    }
}

const READ_CHUNK: usize = 256 * 1024;

impl ImapClient {
    /// Connects, secures the connection as `opts.tls` says, logs in, and learns the
    /// capabilities. TCP_NODELAY is set. Errors: connection problems are `Temporary`, a
    /// refused login `Unauthenticated`, an untrusted certificate `InvalidInput`.
    pub async fn connect(opts: &ConnectOptions) -> Result<ImapClient, ImapError> {
        let label = format!("{}:{}", opts.host, opts.port);
        let ctx = format!("connect {label}");
        let tcp = tokio::time::timeout(
            opts.timeout,
            TcpStream::connect((opts.host.as_str(), opts.port)),
        )
        .await
        .map_err(|_| ImapError::Timeout {
            command: ctx.clone(),
            timeout: opts.timeout,
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
                starttls_prelude(&mut tcp, opts.timeout, &label).await?;
                Box::new(tls_handshake(tcp, opts, &label).await?)
            }
        };
        let mut client = ImapClient::new(io, opts.timeout, label);
        if opts.tls != TlsMode::StartTls {
            client.read_greeting().await?;
        }
        // A greeting with `[CAPABILITY …]` (Dovecot's, and most servers') saves the round
        // trip; after STARTTLS the capabilities must be asked again (RFC 3501 6.2.1).
        if client.caps.is_empty() {
            client.capability().await?;
        }
        client.authenticate(&opts.credentials).await?;
        if opts.send_id && client.has_capability("ID") {
            // Some servers (and provider throttles) want to know who is calling; failure is harmless.
            if let Err(e) = client
                .simple(
                    "ID (\"name\" \"legacyflo\" \"version\" \"0.1\")",
                    "ID",
                    None,
                )
                .await
            {
                debug!(message = "ID refused", error = %e);
            }
        }
        Ok(client)
    }

    /// Wraps an already connected stream (tests replay transcripts through this). Call
    /// [`read_greeting`](Self::read_greeting) next.
    pub fn new(io: Box<dyn Io>, timeout: Duration, label: impl Into<String>) -> ImapClient {
        ImapClient {
            io,
            buf: BytesMut::with_capacity(64 * 1024),
            scan: 0,
            next_tag: 1,
            caps: Vec::new(),
            timeout,
            label: label.into(),
        }
    }

    /// Reads the greeting; `BYE` is an error, capabilities in it are kept.
    pub async fn read_greeting(&mut self) -> Result<(), ImapError> {
        match self.read_reply("greeting").await? {
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
                message: format!("unexpected greeting {other:?}"),
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
        let untagged = self.simple("CAPABILITY", "CAPABILITY", None).await?;
        for r in untagged {
            if let Reply::Untagged(Response::Capabilities(c)) = r {
                self.caps = caps_to_strings(&c);
            }
        }
        Ok(())
    }

    async fn authenticate(&mut self, creds: &Credentials) -> Result<(), ImapError> {
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
                let tag = self.send(parts, &what).await?;
                self.collect(&tag, &what, None).await.map(|(d, _)| d)?
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
                self.sasl("PLAIN", &raw, &what).await?
            }
            Credentials::XOAuth2 { user, provider } => {
                let raw =
                    |t: &Secret| format!("user={}\x01auth=Bearer {}\x01\x01", user, t.expose());
                let token = provider.token(user).await?;
                match self.sasl("XOAUTH2", &raw(&token), &what).await {
                    // A cached token the server no longer takes (expired early, revoked):
                    // drop it and try once more with a fresh one.
                    Err(ImapError::No { .. }) => {
                        debug!(server = %self.label, how = %what, "token refused: fetching a fresh one");
                        provider.refused(user, &token).await;
                        let fresh = provider.token(user).await?;
                        self.sasl("XOAUTH2", &raw(&fresh), &what).await?
                    }
                    r => r?,
                }
            }
        };
        match done {
            Some(ResponseCode::Capabilities(c)) => self.caps = caps_to_strings(&c),
            _ => self.capability().await?,
        }
        debug!(message = "logged in", server = %self.label, how = %what);
        Ok(())
    }

    async fn sasl(
        &mut self,
        mech: &str,
        raw: &str,
        what: &str,
    ) -> Result<Option<ResponseCode<'static>>, ImapError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
        let tag = self.tag();
        let ir = self.has_capability("SASL-IR");
        let line = if ir {
            format!("{tag} AUTHENTICATE {mech} {b64}\r\n")
        } else {
            format!("{tag} AUTHENTICATE {mech}\r\n")
        };
        self.write(line.as_bytes(), what).await?;
        self.flush(what).await?;
        let mut sent = ir;
        loop {
            match self.read_reply(what).await? {
                Reply::Continue(_) => {
                    // First `+`: send the response; a later one is an error challenge
                    // (XOAUTH2 sends JSON) answered with an empty line.
                    let reply = if sent { String::new() } else { b64.clone() };
                    sent = true;
                    self.write(format!("{reply}\r\n").as_bytes(), what).await?;
                    self.flush(what).await?;
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
                _ => {}
            }
        }
    }

    /// Sends `command` (no literals) and waits for its completion; returns the untagged
    /// responses. `NO`/`BAD` become errors naming `what` and `mailbox`.
    pub async fn simple(
        &mut self,
        command: &str,
        what: &str,
        mailbox: Option<&str>,
    ) -> Result<Vec<Reply>, ImapError> {
        let tag = self
            .send(vec![Part::Text(command.to_string())], what)
            .await?;
        self.collect(&tag, what, mailbox).await.map(|(_, u)| u)
    }

    /// `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has SPECIAL-USE and
    /// `RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY))` when it has LIST-STATUS (RFC 5819),
    /// so that one round trip also tells what every mailbox holds
    /// ([`ListEntry::status`]).
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
        let untagged = self.simple(&cmd, "LIST", None).await?;
        let mut entries = Vec::new();
        let mut statuses = HashMap::new();
        for r in untagged {
            match r {
                Reply::Untagged(Response::MailboxData(MailboxDatum::Status {
                    mailbox,
                    status,
                })) => {
                    statuses.insert(mailbox.to_string(), mailbox_info(&status));
                }
                r => entries.extend(list_entry(r)),
            }
        }
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
        let untagged = self.simple("LIST \"\" \"\"", "LIST", None).await?;
        Ok(untagged
            .into_iter()
            .filter_map(list_entry)
            .find_map(|e| e.delimiter))
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
        let tag = self.send(parts, verb).await?;
        let (done, untagged) = self.collect(&tag, verb, Some(mailbox)).await?;
        let mut info = MailboxInfo::default();
        let _ = done;
        for r in untagged {
            match r {
                Reply::Untagged(Response::MailboxData(MailboxDatum::Exists(n))) => info.exists = n,
                Reply::Untagged(Response::Data {
                    code: Some(code), ..
                }) => match code {
                    ResponseCode::UidValidity(v) => info.uid_validity = v,
                    ResponseCode::UidNext(n) => info.uid_next = n,
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(info)
    }

    /// `STATUS mailbox (UIDVALIDITY UIDNEXT MESSAGES)`.
    pub async fn status(&mut self, mailbox: &str) -> Result<MailboxInfo, ImapError> {
        let mut parts = vec![Part::Text("STATUS ".into())];
        push_astring(&mut parts, mailbox);
        parts.push(Part::Text(" (UIDVALIDITY UIDNEXT MESSAGES)".into()));
        let tag = self.send(parts, "STATUS").await?;
        let (_, untagged) = self.collect(&tag, "STATUS", Some(mailbox)).await?;
        let mut info = MailboxInfo::default();
        for r in untagged {
            if let Reply::Untagged(Response::MailboxData(MailboxDatum::Status { status, .. })) = r {
                info = mailbox_info(&status);
            }
        }
        Ok(info)
    }

    /// `UID SEARCH criteria` in the selected `mailbox`; UIDs ascending.
    pub async fn uid_search(
        &mut self,
        criteria: &str,
        mailbox: &str,
    ) -> Result<Vec<u32>, ImapError> {
        let untagged = self
            .simple(
                &format!("UID SEARCH {criteria}"),
                "UID SEARCH",
                Some(mailbox),
            )
            .await?;
        let mut uids = Vec::new();
        for r in untagged {
            if let Reply::Untagged(Response::MailboxData(MailboxDatum::Search(v))) = r {
                uids.extend(v);
            }
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Sends `UID FETCH set items` without waiting; returns the tag. Read the answers with
    /// [`next_reply`](Self::next_reply) (pipelining: several may be in flight).
    pub async fn send_uid_fetch(&mut self, set: &str, items: &str) -> Result<String, ImapError> {
        self.send(
            vec![Part::Text(format!("UID FETCH {set} {items}"))],
            "UID FETCH",
        )
        .await
    }

    /// Reads the next response (for pipelined commands). `what` names the command in errors.
    pub async fn next_reply(&mut self, what: &str) -> Result<Reply, ImapError> {
        self.read_reply(what).await
    }

    /// `UID FETCH set items` in the selected `mailbox`, all answers collected.
    pub async fn uid_fetch(
        &mut self,
        set: &str,
        items: &str,
        mailbox: &str,
    ) -> Result<Vec<FetchItem>, ImapError> {
        let tag = self.send_uid_fetch(set, items).await?;
        let (_, untagged) = self.collect(&tag, "UID FETCH", Some(mailbox)).await?;
        Ok(untagged
            .into_iter()
            .filter_map(|r| match r {
                Reply::Fetch(f) => Some(f),
                _ => None,
            })
            .collect())
    }

    /// `CREATE mailbox`; a mailbox that already exists is fine.
    pub async fn create(&mut self, mailbox: &str) -> Result<(), ImapError> {
        let mut parts = vec![Part::Text("CREATE ".into())];
        push_astring(&mut parts, mailbox);
        let tag = self.send(parts, "CREATE").await?;
        match self.collect(&tag, "CREATE", Some(mailbox)).await {
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
    /// server gives APPENDUID (UIDPLUS), in order. All-or-error: on `Err` some of the
    /// messages may have been stored (an IMAP server cannot un-append).
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
            let tag = self.send_with(parts, "APPEND", plus).await?;
            let (done, _) = self.collect(&tag, "APPEND", Some(mailbox)).await?;
            let uids = match done {
                Some(ResponseCode::AppendUid(v, set)) => {
                    expand_set(&set).into_iter().map(|u| Some((v, u))).collect()
                }
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
            tags.push(self.send_with(parts, "APPEND", plus).await?);
        }
        let mut first_err = None;
        for tag in tags {
            match self.collect(&tag, "APPEND", Some(mailbox)).await {
                Ok((Some(ResponseCode::AppendUid(v, set)), _)) => {
                    out.push(expand_set(&set).first().map(|u| (v, *u)))
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

    // ---- plumbing ----

    fn tag(&mut self) -> String {
        let t = format!("L{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    async fn send(&mut self, parts: Vec<Part<'_>>, what: &str) -> Result<String, ImapError> {
        let plus = self.has_capability("LITERAL+");
        self.send_with(parts, what, plus).await
    }

    async fn send_with(
        &mut self,
        parts: Vec<Part<'_>>,
        what: &str,
        literal_plus: bool,
    ) -> Result<String, ImapError> {
        let tag = self.tag();
        let mut line = format!("{tag} ");
        for part in parts {
            match part {
                Part::Text(t) => line.push_str(&t),
                Part::Literal(data) => {
                    if literal_plus {
                        let _ = write!(line, "{{{}+}}\r\n", data.len());
                        self.write(line.as_bytes(), what).await?;
                        line.clear();
                        self.write(data, what).await?;
                    } else {
                        let _ = write!(line, "{{{}}}\r\n", data.len());
                        self.write(line.as_bytes(), what).await?;
                        self.flush(what).await?;
                        line.clear();
                        self.wait_continue(what).await?;
                        self.write(data, what).await?;
                    }
                }
            }
        }
        line.push_str("\r\n");
        self.write(line.as_bytes(), what).await?;
        self.flush(what).await?;
        Ok(tag)
    }

    async fn wait_continue(&mut self, what: &str) -> Result<(), ImapError> {
        loop {
            match self.read_reply(what).await? {
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
                _ => {}
            }
        }
    }

    /// Reads until the completion of `tag`; returns its response code and the untagged
    /// responses seen meanwhile.
    async fn collect(
        &mut self,
        tag: &str,
        what: &str,
        mailbox: Option<&str>,
    ) -> Result<(Option<ResponseCode<'static>>, Vec<Reply>), ImapError> {
        let mut untagged = Vec::new();
        loop {
            match self.read_reply(what).await? {
                Reply::Done {
                    tag: t,
                    status,
                    code,
                    code_text,
                    text,
                } => {
                    if t == tag {
                        let code = check_status(status, code, code_text, text, what, mailbox)?;
                        return Ok((code, untagged));
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
                other => untagged.push(other),
            }
        }
    }

    async fn write(&mut self, data: &[u8], what: &str) -> Result<(), ImapError> {
        match tokio::time::timeout(self.timeout, self.io.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ImapError::Io {
                command: what.into(),
                source,
            }),
            Err(_) => Err(ImapError::Timeout {
                command: what.into(),
                timeout: self.timeout,
            }),
        }
    }

    async fn flush(&mut self, what: &str) -> Result<(), ImapError> {
        match tokio::time::timeout(self.timeout, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ImapError::Io {
                command: what.into(),
                source,
            }),
            Err(_) => Err(ImapError::Timeout {
                command: what.into(),
                timeout: self.timeout,
            }),
        }
    }

    /// Reads one complete response frame.
    async fn read_frame(&mut self, what: &str) -> Result<Bytes, ImapError> {
        loop {
            if let Some(end) = self.frame_end() {
                self.scan = 0;
                return Ok(self.buf.split_to(end).freeze());
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            let n = match tokio::time::timeout(self.timeout, self.io.read_buf(&mut self.buf)).await
            {
                Ok(Ok(n)) => n,
                Ok(Err(source)) => {
                    return Err(ImapError::Io {
                        command: what.into(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(ImapError::Timeout {
                        command: what.into(),
                        timeout: self.timeout,
                    });
                }
            };
            if n == 0 {
                return Err(ImapError::Closed {
                    command: what.into(),
                });
            }
        }
    }

    /// The end of the first complete response in the buffer, continuing the scan where the
    /// last call stopped.
    fn frame_end(&mut self) -> Option<usize> {
        loop {
            let from = self.scan;
            if from > self.buf.len() {
                return None;
            }
            let nl = self.buf[from..].iter().position(|&b| b == b'\n')? + from;
            let line = &self.buf[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match literal_len(line) {
                Some(n) => {
                    self.scan = nl + 1 + n;
                    if self.scan > self.buf.len() {
                        // Make room for the whole literal at once.
                        let need = self.scan - self.buf.len();
                        self.buf.reserve(need);
                        return None;
                    }
                }
                None => return Some(nl + 1),
            }
        }
    }

    async fn read_reply(&mut self, what: &str) -> Result<Reply, ImapError> {
        let frame = self.read_frame(what).await?;
        Ok(parse_frame(frame))
    }
}

/// The `n` of a line ending in `{n}` or `{n+}`.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..];
    let inner = inner.strip_suffix(b"+").unwrap_or(inner);
    if inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Parses one complete frame into an owned [`Reply`]; bodies are sliced from `frame`.
pub fn parse_frame(frame: Bytes) -> Reply {
    let parsed = imap_proto::parser::parse_response(&frame);
    match parsed {
        Ok((_, resp)) => match resp {
            Response::Done {
                tag,
                status,
                code,
                information,
            } => {
                let text = information.map(|s| s.to_string()).unwrap_or_default();
                let (code_text, text) = split_code(code.as_ref(), text);
                Reply::Done {
                    tag: tag.0,
                    status,
                    code: code.map(ResponseCode::into_owned),
                    code_text,
                    text,
                }
            }
            Response::Continue { information, .. } => {
                Reply::Continue(information.map(|s| s.to_string()).unwrap_or_default())
            }
            Response::Fetch(seq, attrs) => Reply::Fetch(fetch_item(&frame, seq, attrs)),
            other => Reply::Untagged(other.into_owned()),
        },
        Err(_) => fallback_parse(frame),
    }
}

fn split_code(code: Option<&ResponseCode<'_>>, text: String) -> (Option<String>, String) {
    if let Some(c) = code {
        let name = match c {
            ResponseCode::TryCreate => "TRYCREATE",
            ResponseCode::ReadOnly => "READ-ONLY",
            ResponseCode::AppendUid(..) => "APPENDUID",
            _ => "",
        };
        return ((!name.is_empty()).then(|| name.to_string()), text);
    }
    if let Some(rest) = text.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let inner = &rest[..end];
        let name = inner.split_whitespace().next().unwrap_or("").to_string();
        return (Some(name), rest[end + 1..].trim_start().to_string());
    }
    (None, text)
}

/// What imap-proto cannot parse: tagged completions are recognised by hand so a strange
/// completion never hangs a command; other lines are kept raw.
fn fallback_parse(frame: Bytes) -> Reply {
    let text = String::from_utf8_lossy(&frame);
    let line = text.trim_end_matches(['\r', '\n']);
    let mut it = line.splitn(3, ' ');
    let tag = it.next().unwrap_or("");
    let status = it.next().unwrap_or("").to_ascii_uppercase();
    let rest = it.next().unwrap_or("").to_string();
    if tag == "+" {
        return Reply::Continue(line.get(2..).unwrap_or("").to_string());
    }
    if tag != "*" && !tag.is_empty() {
        let status = match status.as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            _ => None,
        };
        if let Some(status) = status {
            let (code_text, text) = split_code(None, rest);
            return Reply::Done {
                tag: tag.to_string(),
                status,
                code: None,
                code_text,
                text,
            };
        }
    }
    if tag == "*" && status == "BYE" {
        return Reply::Untagged(Response::Data {
            status: Status::Bye,
            code: None,
            information: Some(rest.into()),
        });
    }
    debug!(message = "unparsed response", line = %line.chars().take(200).collect::<String>());
    Reply::Unparsed(frame)
}

fn slice_of(frame: &Bytes, data: std::borrow::Cow<'_, [u8]>) -> Bytes {
    match data {
        std::borrow::Cow::Borrowed(s) => {
            let base = frame.as_ptr() as usize;
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            if start <= frame.len() && start + s.len() <= frame.len() {
                frame.slice(start..start + s.len())
            } else {
                Bytes::copy_from_slice(s)
            }
        }
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    }
}

fn fetch_item(frame: &Bytes, seq: u32, attrs: Vec<AttributeValue<'_>>) -> FetchItem {
    let mut item = FetchItem {
        seq,
        ..FetchItem::default()
    };
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => item.uid = Some(u),
            AttributeValue::BodySection { data, .. } | AttributeValue::Rfc822(data) => {
                item.body = Some(data.map(|d| slice_of(frame, d)).unwrap_or_default())
            }
            AttributeValue::Rfc822Header(data) => {
                item.body = Some(data.map(|d| slice_of(frame, d)).unwrap_or_default())
            }
            AttributeValue::Flags(f) => item.flags = f.iter().map(|s| s.to_string()).collect(),
            AttributeValue::InternalDate(d) => item.internal_date = parse_internal_date(&d),
            AttributeValue::Rfc822Size(n) => item.size = Some(n),
            AttributeValue::GmailLabels(l) => {
                item.gmail_labels = l
                    .iter()
                    .map(|s| legacyflo_core::codec::mutf7_decode(s))
                    .collect()
            }
            AttributeValue::GmailMsgId(id) => item.gmail_msgid = Some(id),
            _ => {}
        }
    }
    item
}

fn caps_to_strings(c: &[Capability<'_>]) -> Vec<String> {
    c.iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4REV1".to_string(),
            Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
            Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect()
}

/// What a `STATUS` answer says.
fn mailbox_info(status: &[imap_proto::types::StatusAttribute]) -> MailboxInfo {
    let mut info = MailboxInfo::default();
    for a in status {
        match a {
            imap_proto::types::StatusAttribute::UidValidity(v) => info.uid_validity = *v,
            imap_proto::types::StatusAttribute::UidNext(v) => info.uid_next = *v,
            imap_proto::types::StatusAttribute::Messages(v) => info.exists = *v,
            _ => {}
        }
    }
    info
}

fn list_entry(r: Reply) -> Option<ListEntry> {
    let Reply::Untagged(Response::MailboxData(MailboxDatum::List {
        name_attributes,
        delimiter,
        name,
    })) = r
    else {
        return None;
    };
    let mut noselect = false;
    let mut special_use = None;
    let mut attributes = Vec::new();
    for a in &name_attributes {
        let s = match a {
            NameAttribute::NoSelect => {
                noselect = true;
                "\\Noselect".to_string()
            }
            NameAttribute::NoInferiors => "\\Noinferiors".into(),
            NameAttribute::Marked => "\\Marked".into(),
            NameAttribute::Unmarked => "\\Unmarked".into(),
            NameAttribute::All => "\\All".into(),
            NameAttribute::Archive => "\\Archive".into(),
            NameAttribute::Drafts => "\\Drafts".into(),
            NameAttribute::Flagged => "\\Flagged".into(),
            NameAttribute::Junk => "\\Junk".into(),
            NameAttribute::Sent => "\\Sent".into(),
            NameAttribute::Trash => "\\Trash".into(),
            NameAttribute::Extension(e) => e.to_string(),
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        let lower = s.to_ascii_lowercase();
        if lower == "\\nonexistent" {
            noselect = true;
        }
        if matches!(
            lower.as_str(),
            "\\all"
                | "\\archive"
                | "\\drafts"
                | "\\flagged"
                | "\\junk"
                | "\\sent"
                | "\\trash"
                | "\\important"
        ) {
            special_use = Some(s.clone());
        }
        attributes.push(s);
    }
    let raw_name = name.to_string();
    Some(ListEntry {
        name: legacyflo_core::codec::mutf7_decode(&raw_name),
        raw_name,
        delimiter: delimiter.and_then(|d| d.chars().next()),
        noselect,
        special_use,
        attributes,
        status: None,
    })
}

fn expand_set(set: &[UidSetMember]) -> Vec<u32> {
    let mut out = Vec::new();
    for m in set {
        match m {
            UidSetMember::Uid(u) => out.push(*u),
            UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start().min(r.end()), *r.start().max(r.end()));
                out.extend(a..=b);
            }
        }
    }
    out
}

fn with_mailbox(what: &str, mailbox: Option<&str>) -> String {
    match mailbox {
        Some(m) => format!("{what} `{}`", legacyflo_core::codec::mutf7_decode(m)),
        None => what.to_string(),
    }
}

fn check_status(
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

fn push_astring<'a>(parts: &mut Vec<Part<'a>>, s: &'a str) {
    match quote(s) {
        Some(q) => parts.push(Part::Text(q)),
        None => parts.push(Part::Literal(s.as_bytes())),
    }
}

fn push_append_args<'a>(parts: &mut Vec<Part<'a>>, m: &'a AppendMessage) {
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

async fn tls_handshake(
    tcp: TcpStream,
    opts: &ConnectOptions,
    label: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let config = tls::client_config(opts.ca_file.as_deref(), opts.insecure)?;
    let name = tls::server_name(&opts.host)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(opts.timeout, connector.connect(name, tcp)).await {
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
            timeout: opts.timeout,
        }),
    }
}

/// Reads one line byte by byte from the plain stream (nothing may be over-read before
/// the TLS handshake).
async fn read_line_plain(
    tcp: &mut TcpStream,
    what: &str,
    timeout: Duration,
) -> Result<String, ImapError> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(timeout, tcp.read(&mut b))
            .await
            .map_err(|_| ImapError::Timeout {
                command: what.into(),
                timeout,
            })?
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

async fn starttls_prelude(
    tcp: &mut TcpStream,
    timeout: Duration,
    label: &str,
) -> Result<(), ImapError> {
    let what = format!("STARTTLS with {label}");
    let greeting = read_line_plain(tcp, &what, timeout).await?;
    if !greeting.to_ascii_uppercase().starts_with("* OK") {
        return Err(ImapError::Protocol {
            command: what,
            message: format!("unexpected greeting `{greeting}`"),
        });
    }
    tcp.write_all(b"S0 STARTTLS\r\n")
        .await
        .map_err(|source| ImapError::Io {
            command: what.clone(),
            source,
        })?;
    loop {
        let line = read_line_plain(tcp, &what, timeout).await?;
        if let Some(rest) = line.strip_prefix("S0 ") {
            if rest.to_ascii_uppercase().starts_with("OK") {
                return Ok(());
            }
            return Err(ImapError::Config(format!(
                "{what}: the server refused STARTTLS: {rest}"
            )));
        }
    }
}

#[cfg(test)]
mod tests;
