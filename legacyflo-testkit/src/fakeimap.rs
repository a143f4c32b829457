//! A small scripted IMAP server on 127.0.0.1 that answers as Gmail or Microsoft 365 do,
//! for what Dovecot cannot show: Gmail's `X-GM-EXT-1` (`X-GM-LABELS`, `X-GM-MSGID` in
//! FETCH, labels as folders beside `[Gmail]/All Mail`) and Exchange Online's throttling
//! answer `NO Request is throttled. Suggested Backoff Time: N milliseconds`.
//!
//! It serves the commands the IMAP source sends (CAPABILITY, LOGIN, ID, LIST, EXAMINE,
//! SELECT, STATUS, UID SEARCH, UID FETCH, NOOP, LOGOUT) from a fixed, read-only set of
//! mailboxes; anything else gets `BAD`. Every command line is recorded with its arrival
//! time so that tests can check what was sent and when.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which provider the server imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Gmail: `X-GM-EXT-1`; FETCH answers carry `X-GM-MSGID` and `X-GM-LABELS`.
    Gmail,
    /// Microsoft 365 / Exchange Online.
    O365,
}

/// One message of a mailbox.
#[derive(Clone, Debug)]
pub struct FakeMessage {
    /// Its UID in the mailbox.
    pub uid: u32,
    /// Its bytes (served as they are).
    pub raw: Vec<u8>,
    /// Gmail labels (`\Inbox`, `\Sent`, `Work`, …), served in `X-GM-LABELS`.
    pub labels: Vec<String>,
    /// Gmail's message id, served in `X-GM-MSGID`.
    pub gm_msgid: u64,
}

/// A mailbox: its wire name, LIST attributes, and messages.
#[derive(Clone, Debug)]
pub struct FakeMailbox {
    /// Name on the wire (already modified UTF-7 where needed), `/`-separated.
    pub name: String,
    /// LIST attributes, e.g. `\HasNoChildren \All`.
    pub attributes: String,
    /// Messages, in UID order.
    pub messages: Vec<FakeMessage>,
}

/// What the server serves.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The provider imitated.
    pub flavor: Flavor,
    /// Its mailboxes.
    pub mailboxes: Vec<FakeMailbox>,
    /// O365 throttling: the first `count` `UID FETCH` commands are answered
    /// `<tag> NO Request is throttled. Suggested Backoff Time: millis milliseconds`.
    pub throttle: Option<(usize, u64)>,
    /// Answer throttled commands with `BAD` instead of `NO` (Exchange Online sends both).
    pub throttle_with_bad: bool,
}

/// A command line received, and when.
#[derive(Clone, Debug)]
pub struct Received {
    /// The line without its tag.
    pub command: String,
    /// When it arrived.
    pub at: Instant,
    /// Whether it was answered with the throttling `NO`.
    pub throttled: bool,
}

struct Shared {
    config: FakeConfig,
    log: Mutex<Vec<Received>>,
    throttled: Mutex<usize>,
}

/// A running fake server; dropping it stops accepting.
pub struct FakeImapServer {
    port: u16,
    shared: Arc<Shared>,
    _accept: AcceptTask,
}

/// The task accepting a test server's connections, each served by `serve` on its own
/// task; dropping it stops accepting (open connections end with their clients).
pub(crate) struct AcceptTask(JoinHandle<()>);

impl AcceptTask {
    pub(crate) fn spawn<S, F, Fut>(listener: TcpListener, shared: Arc<S>, serve: F) -> AcceptTask
    where
        S: Send + Sync + 'static,
        F: Fn(TcpStream, Arc<S>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    {
        AcceptTask(tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let conn = serve(sock, shared.clone());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }))
    }
}

impl Drop for AcceptTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for FakeImapServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeImapServer")
            .field("port", &self.port)
            .field("flavor", &self.shared.config.flavor)
            .finish()
    }
}

impl FakeImapServer {
    /// Listens on `127.0.0.1:0` and serves `config` to every connection (any login works).
    pub async fn start(config: FakeConfig) -> FakeImapServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake IMAP server");
        let port = listener.local_addr().expect("fake server address").port();
        let shared = Arc::new(Shared {
            config,
            log: Mutex::new(Vec::new()),
            throttled: Mutex::new(0),
        });
        let accept = AcceptTask::spawn(listener, shared.clone(), serve);
        FakeImapServer {
            port,
            shared,
            _accept: accept,
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every command received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }
}

fn capability(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Gmail => {
            "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584"
        }
        Flavor::O365 => {
            "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
        }
    }
}

/// What `BODY[HEADER.FIELDS (MESSAGE-ID)]` answers for `raw`: its Message-ID line(s)
/// and the blank line that ends a header.
pub(crate) fn message_id_field(raw: &[u8]) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 4);
    raw[..end]
        .split(|b| *b == b'\n')
        .filter(|l| l.len() > 11 && l[..11].eq_ignore_ascii_case(b"message-id:"))
        .flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n')))
        .chain(*b"\r\n")
        .collect()
}

/// `1:5,7,9:*` → whether `uid` is in it (`*` is the highest UID, `max`).
pub(crate) fn in_set(set: &str, uid: u32, max: u32) -> bool {
    set.split(',').any(|part| {
        let num = |s: &str| {
            if s == "*" {
                Some(max)
            } else {
                s.parse::<u32>().ok()
            }
        };
        match part.split_once(':') {
            Some((a, b)) => match (num(a), num(b)) {
                (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&uid),
                _ => false,
            },
            None => num(part) == Some(uid),
        }
    })
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The first argument of a command: a quoted string or an atom; the rest.
fn first_arg(s: &str) -> (String, &str) {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return (out, &rest[i + 1..]),
                _ => out.push(c),
            }
        }
        (out, "")
    } else {
        match s.split_once(' ') {
            Some((a, b)) => (a.to_string(), b),
            None => (s.to_string(), ""),
        }
    }
}

async fn serve(sock: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let flavor = shared.config.flavor;
    w.write_all(format!("* OK [CAPABILITY {}] ready\r\n", capability(flavor)).as_bytes())
        .await?;
    let mut selected: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let l = line.trim_end_matches(['\r', '\n']).to_string();
        let Some((tag, rest)) = l.split_once(' ') else {
            continue;
        };
        let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let verb = verb.to_ascii_uppercase();
        let mut throttled = false;
        let mut out = String::new();
        match verb.as_str() {
            "CAPABILITY" => {
                out.push_str(&format!("* CAPABILITY {}\r\n", capability(flavor)));
                out.push_str(&format!("{tag} OK CAPABILITY completed\r\n"));
            }
            "LOGIN" => out.push_str(&format!(
                "{tag} OK [CAPABILITY {}] LOGIN completed\r\n",
                capability(flavor)
            )),
            "ID" => out.push_str(&format!("* ID NIL\r\n{tag} OK ID completed\r\n")),
            "NOOP" => out.push_str(&format!("{tag} OK NOOP completed\r\n")),
            "LOGOUT" => {
                w.write_all(
                    format!("* BYE logging out\r\n{tag} OK LOGOUT completed\r\n").as_bytes(),
                )
                .await?;
                return Ok(());
            }
            "LIST" => {
                let (_, rest) = first_arg(args);
                let (pattern, _) = first_arg(rest);
                if pattern.is_empty() {
                    out.push_str("* LIST (\\Noselect) \"/\" \"\"\r\n");
                } else {
                    for m in &shared.config.mailboxes {
                        out.push_str(&format!(
                            "* LIST ({}) \"/\" {}\r\n",
                            m.attributes,
                            quoted(&m.name)
                        ));
                    }
                }
                out.push_str(&format!("{tag} OK LIST completed\r\n"));
            }
            "SELECT" | "EXAMINE" | "STATUS" => {
                let (name, _) = first_arg(args);
                match shared.config.mailboxes.iter().position(|m| m.name == name) {
                    Some(i) => {
                        let m = &shared.config.mailboxes[i];
                        let next = m.messages.last().map(|x| x.uid + 1).unwrap_or(1);
                        if verb == "STATUS" {
                            out.push_str(&format!(
                                "* STATUS {} (MESSAGES {} UIDNEXT {next} UIDVALIDITY 11 UNSEEN 0)\r\n",
                                quoted(&m.name),
                                m.messages.len()
                            ));
                            out.push_str(&format!("{tag} OK STATUS completed\r\n"));
                        } else {
                            selected = Some(i);
                            out.push_str(&format!(
                                "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 11] UIDs valid\r\n* OK [UIDNEXT {next}] Predicted next UID\r\n{tag} OK [{}] {verb} completed\r\n",
                                m.messages.len(),
                                if verb == "EXAMINE" { "READ-ONLY" } else { "READ-WRITE" }
                            ));
                        }
                    }
                    None => out.push_str(&format!(
                        "{tag} NO [NONEXISTENT] Unknown Mailbox: {name}\r\n"
                    )),
                }
            }
            "UID" => {
                let (sub, rest) = args.split_once(' ').unwrap_or((args, ""));
                let sub = sub.to_ascii_uppercase();
                let Some(m) = selected.map(|i| &shared.config.mailboxes[i]) else {
                    out.push_str(&format!("{tag} BAD No mailbox selected\r\n"));
                    w.write_all(out.as_bytes()).await?;
                    continue;
                };
                let max = m.messages.last().map(|x| x.uid).unwrap_or(0);
                if sub == "SEARCH" {
                    // Only `UID set` narrows; date criteria select everything here.
                    let toks: Vec<&str> = rest.split_whitespace().collect();
                    let set = toks
                        .iter()
                        .position(|t| t.eq_ignore_ascii_case("UID"))
                        .and_then(|i| toks.get(i + 1));
                    let uids: Vec<String> = m
                        .messages
                        .iter()
                        .filter(|x| set.is_none_or(|s| in_set(s, x.uid, max)))
                        .map(|x| x.uid.to_string())
                        .collect();
                    out.push_str(&format!("* SEARCH {}\r\n", uids.join(" ")));
                    out.push_str(&format!("{tag} OK SEARCH completed\r\n"));
                } else if sub == "FETCH" {
                    let throttle_now = match shared.config.throttle {
                        Some((count, _)) => {
                            let mut n = shared
                                .throttled
                                .lock()
                                .map_err(|_| std::io::Error::other("poisoned"))?;
                            if *n < count {
                                *n += 1;
                                true
                            } else {
                                false
                            }
                        }
                        None => false,
                    };
                    if let (true, Some((_, ms))) = (throttle_now, shared.config.throttle) {
                        throttled = true;
                        let word = if shared.config.throttle_with_bad {
                            "BAD"
                        } else {
                            "NO"
                        };
                        out.push_str(&format!(
                            "{tag} {word} Request is throttled. Suggested Backoff Time: {ms} milliseconds\r\n"
                        ));
                    } else {
                        let (set, items) = rest.split_once(' ').unwrap_or((rest, ""));
                        let items = items.to_ascii_uppercase();
                        let body = items.contains("BODY.PEEK[]") || items.contains("BODY[]");
                        let mut bytes: Vec<u8> = Vec::new();
                        for (seq, x) in m.messages.iter().enumerate() {
                            if !in_set(set, x.uid, max) {
                                continue;
                            }
                            let mut head = format!("* {} FETCH (UID {}", seq + 1, x.uid);
                            if flavor == Flavor::Gmail && items.contains("X-GM-MSGID") {
                                head.push_str(&format!(" X-GM-MSGID {}", x.gm_msgid));
                            }
                            if flavor == Flavor::Gmail && items.contains("X-GM-LABELS") {
                                let labels: Vec<String> = x
                                    .labels
                                    .iter()
                                    .map(|l| {
                                        if l.starts_with('\\') {
                                            l.clone()
                                        } else {
                                            quoted(l)
                                        }
                                    })
                                    .collect();
                                head.push_str(&format!(" X-GM-LABELS ({})", labels.join(" ")));
                            }
                            head.push_str(&format!(
                                " FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE {}",
                                x.raw.len()
                            ));
                            if items.contains("HEADER.FIELDS") {
                                let hdr = message_id_field(&x.raw);
                                head.push_str(&format!(
                                    " BODY[HEADER.FIELDS (MESSAGE-ID)] {{{}}}\r\n",
                                    hdr.len()
                                ));
                                bytes.extend_from_slice(head.as_bytes());
                                bytes.extend_from_slice(&hdr);
                                bytes.extend_from_slice(b")\r\n");
                            } else if body {
                                head.push_str(&format!(" BODY[] {{{}}}\r\n", x.raw.len()));
                                bytes.extend_from_slice(head.as_bytes());
                                bytes.extend_from_slice(&x.raw);
                                bytes.extend_from_slice(b")\r\n");
                            } else {
                                head.push_str(")\r\n");
                                bytes.extend_from_slice(head.as_bytes());
                            }
                        }
                        bytes.extend_from_slice(format!("{tag} OK FETCH completed\r\n").as_bytes());
                        w.write_all(&bytes).await?;
                    }
                } else {
                    out.push_str(&format!("{tag} BAD Unsupported UID command\r\n"));
                }
            }
            _ => out.push_str(&format!("{tag} BAD Command not supported here\r\n")),
        }
        if let Ok(mut log) = shared.log.lock() {
            log.push(Received {
                command: rest.to_string(),
                at: Instant::now(),
                throttled,
            });
        }
        if !out.is_empty() {
            w.write_all(out.as_bytes()).await?;
        }
    }
}
