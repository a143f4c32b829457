//! A hostile IMAP server on 127.0.0.1: a small IMAP4rev1 server (UIDPLUS, MULTIAPPEND,
//! LITERAL+) whose answers are perturbed the way a compromised, buggy or man-in-the-middle
//! server would perturb them ([`Mode`]): literals announced as 100 GB or really 3 GiB,
//! lines that never end, answers trickled one byte at a time or never sent, messages
//! silently left out of `UID FETCH`, garbage and unsolicited responses, an `APPENDUID`
//! naming four billion UIDs, and mailbox names that collide once decoded or hold control
//! characters ([`colliding_mailboxes`], [`control_mailboxes`]).
//!
//! It serves what the IMAP source and the vault sink send: CAPABILITY, LOGIN,
//! AUTHENTICATE PLAIN, ID, NOOP, LOGOUT, LIST, EXAMINE, SELECT, STATUS, CREATE, APPEND
//! (also MULTIAPPEND, with synchronising and `LITERAL+` literals), UID SEARCH, UID FETCH,
//! UID STORE and UID EXPUNGE. Mailbox names are compared byte for byte, except that
//! `INBOX` is case-insensitive as RFC 3501 says, so `abs` and `/abs` are two mailboxes but
//! `inbox` is INBOX. Logins and connections are counted, so tests
//! can check how often a client came back.
//!
//! [`scenario`] builds the named configurations the tests and the `hostile-imap` binary
//! share.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use crate::fakeimap::{AcceptTask, FakeMailbox, FakeMessage, in_set, message_id_field};

/// How the server misbehaves. Everything not named here is answered as a plain server
/// would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No misbehaviour.
    Honest,
    /// The `UID FETCH` answer for `uid` announces a literal of 99,999,999,999 bytes, sends
    /// 64 KiB of it and then nothing more (the connection stays open).
    AnnouncedHugeLiteral {
        /// The message whose size is a lie.
        uid: u32,
    },
    /// The `UID FETCH` answer for `uid` carries a real literal of `size` bytes, generated
    /// while it is sent (never held in memory).
    HugeLiteral {
        /// The huge message.
        uid: u32,
        /// Its size.
        size: u64,
    },
    /// Every `UID FETCH` answer starts a line that never ends (no CRLF), sent as fast as
    /// the client reads.
    EndlessLine,
    /// `UID FETCH` answers are sent one byte every `every` (the connection never goes
    /// idle for long).
    Trickle {
        /// Delay between two bytes.
        every: Duration,
    },
    /// Greets, then reads commands and never answers.
    SilentAfterGreeting,
    /// Answers until the first `UID FETCH`, sends the first message of its answer and
    /// half a line of the next, then nothing more (the connection stays open).
    SilentMidFetch,
    /// Sends half of the first message of every `UID FETCH` answer, then closes the
    /// connection: no message ever arrives whole.
    CloseMidFetch,
    /// `UID FETCH` answers `OK` while leaving messages out: `missing` ones always (`UID
    /// SEARCH` keeps listing them), `vanished` ones from the first FETCH that asks for
    /// them on (they are expunged then: later searches no longer list them), `flaky`
    /// ones only in the first FETCH that asks for them.
    OmitUids {
        /// Never delivered, always listed.
        missing: Vec<u32>,
        /// Deleted between the listing and the fetch.
        vanished: Vec<u32>,
        /// Left out once.
        flaky: Vec<u32>,
    },
    /// `UID FETCH` answers mix in garbage, by UID modulo 5: 0 is answered properly, 1
    /// without its body (flags only), 2 with its body under a UID not asked for, 3 as an
    /// unparsable line, 4 with `BODY[] NIL`; plus lines of binary noise.
    GarbageFetch,
    /// Before every `UID FETCH` answer, `count` FETCH responses with 1 KiB bodies for UIDs
    /// nobody asked for, and `count` `EXISTS`/`RECENT` updates.
    Unsolicited {
        /// Responses per command.
        count: usize,
    },
    /// Every `APPEND` is answered `OK [APPENDUID 1 1:4294967295]`.
    HugeAppendUid,
}

/// What the server serves.
#[derive(Clone, Debug)]
pub struct HostileConfig {
    /// The misbehaviour.
    pub mode: Mode,
    /// The mailboxes, by wire name (`/` is the separator); messages in UID order.
    pub mailboxes: Vec<FakeMailbox>,
}

/// Counters and the command log.
#[derive(Debug, Default)]
struct Stats {
    connections: AtomicUsize,
    logins: AtomicUsize,
    commands: Mutex<Vec<String>>,
}

struct Shared {
    mode: Mode,
    mailboxes: Mutex<Vec<FakeMailbox>>,
    stats: Stats,
    /// `OmitUids`: vanished UIDs already fetched (gone), flaky UIDs already left out once.
    gone: Mutex<HashSet<u32>>,
    flaked: Mutex<HashSet<u32>>,
}

/// A running hostile server; dropping it stops accepting (open connections end when
/// their clients leave).
pub struct HostileImapServer {
    port: u16,
    shared: Arc<Shared>,
    _accept: AcceptTask,
}

impl std::fmt::Debug for HostileImapServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileImapServer")
            .field("port", &self.port)
            .field("mode", &self.shared.mode)
            .finish()
    }
}

impl HostileImapServer {
    /// Listens on `127.0.0.1:port` (`0`: any free port) and serves `config` to every
    /// connection; any login works.
    pub async fn start_on(config: HostileConfig, port: u16) -> std::io::Result<HostileImapServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            mode: config.mode,
            mailboxes: Mutex::new(config.mailboxes),
            stats: Stats::default(),
            gone: Mutex::new(HashSet::new()),
            flaked: Mutex::new(HashSet::new()),
        });
        let accept = AcceptTask::spawn(listener, shared.clone(), serve);
        Ok(HostileImapServer {
            port,
            shared,
            _accept: accept,
        })
    }

    /// [`start_on`](Self::start_on) any free port.
    pub async fn start(config: HostileConfig) -> HostileImapServer {
        Self::start_on(config, 0)
            .await
            .expect("bind the hostile IMAP server")
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.stats.connections.load(Ordering::SeqCst)
    }

    /// `LOGIN` / `AUTHENTICATE` commands received so far.
    pub fn logins(&self) -> usize {
        self.shared.stats.logins.load(Ordering::SeqCst)
    }

    /// Every command received so far (verb and arguments, literals as `{n}`), in order.
    pub fn commands(&self) -> Vec<String> {
        self.shared
            .stats
            .commands
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// The messages of mailbox `name` now (after APPENDs).
    pub fn messages(&self, name: &str) -> Vec<FakeMessage> {
        self.shared
            .mailboxes
            .lock()
            .ok()
            .and_then(|mut m| find(&mut m, name.as_bytes()).map(|b| b.messages.clone()))
            .unwrap_or_default()
    }
}

/// A small message with a Message-ID naming `tag` and `uid`.
pub fn message(tag: &str, uid: u32) -> FakeMessage {
    FakeMessage {
        uid,
        raw: format!(
            "Message-ID: <{tag}-{uid}@hostile.test>\r\nFrom: a@hostile.test\r\nSubject: {tag} {uid}\r\n\r\nbody of {tag} {uid}\r\n"
        )
        .into_bytes(),
        labels: Vec::new(),
        gm_msgid: u64::from(uid),
    }
}

/// A mailbox named `name` (wire form) with messages of UIDs `1..=n`.
pub fn mailbox(name: &str, n: u32) -> FakeMailbox {
    let tag: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    FakeMailbox {
        name: name.to_string(),
        attributes: "\\HasNoChildren".into(),
        messages: (1..=n).map(|u| message(&tag, u)).collect(),
    }
}

/// Mailboxes whose names are distinct on the server but read the same once decoded and
/// split on `/`: `abs`, `/abs`, `abs/`; `x/y`, `x//y`; `Foo` and a modified UTF-7
/// spelling of `Foo`; `INBOX`, `/inbox` and `Inbox/` (only a bare `INBOX` is
/// case-insensitive). Each holds `n` messages of its own. The last one, `inbox`, is listed
/// too but is INBOX again (RFC 3501 5.1) and holds nothing of its own.
pub fn colliding_mailboxes(n: u32) -> Vec<FakeMailbox> {
    let mut boxes: Vec<FakeMailbox> = [
        "INBOX",
        "/inbox",
        "Inbox/",
        "abs",
        "/abs",
        "abs/",
        "x",
        "x/y",
        "x//y",
        "Foo",
        "&AEYAbwBv-",
    ]
    .iter()
    .map(|name| mailbox(name, n))
    .collect();
    boxes.push(mailbox("inbox", 0));
    boxes
}

/// The mailbox a command names: byte for byte, and a bare `INBOX` in any case.
fn find<'m>(boxes: &'m mut [FakeMailbox], name: &[u8]) -> Option<&'m mut FakeMailbox> {
    let exact = boxes.iter().position(|m| m.name.as_bytes() == name);
    let inbox = || {
        name.eq_ignore_ascii_case(b"INBOX")
            .then(|| boxes.iter().position(|m| m.name == "INBOX"))
            .flatten()
    };
    let i = exact.or_else(inbox)?;
    boxes.get_mut(i)
}

/// Mailboxes whose names hold control characters: ESC (quoted), CR LF (a literal, as
/// IMAP requires), NUL (modified UTF-7 `&AAA-`), and a name forging a report line.
pub fn control_mailboxes(n: u32) -> Vec<FakeMailbox> {
    [
        "INBOX",
        "esc\u{1b}[31mred",
        "x\r\nMBOX-S3-ZIP: done",
        "nul&AAA-byte",
        "tab\tand&AA0ACg-crlf",
    ]
    .iter()
    .map(|name| mailbox(name, n))
    .collect()
}

/// The named scenarios of the `hostile-imap` binary and the tests: a mode and the
/// mailboxes it is served with. Names: `honest`, `huge-literal-announced`,
/// `huge-literal-3g`, `endless-line`, `trickle`, `silent-after-greeting`,
/// `silent-mid-fetch`, `close-mid-fetch`, `omitted-uids`, `garbage-fetch`, `unsolicited`,
/// `huge-appenduid`, `colliding-names`, `control-names`.
pub fn scenario(name: &str) -> Option<HostileConfig> {
    let inbox = |n| vec![mailbox("INBOX", n)];
    let (mode, mailboxes) = match name {
        "honest" => (Mode::Honest, inbox(5)),
        "huge-literal-announced" => (Mode::AnnouncedHugeLiteral { uid: 3 }, inbox(5)),
        "huge-literal-3g" => (
            Mode::HugeLiteral {
                uid: 3,
                size: 3 << 30,
            },
            inbox(5),
        ),
        "endless-line" => (Mode::EndlessLine, inbox(5)),
        "trickle" => (
            Mode::Trickle {
                every: Duration::from_secs(5),
            },
            inbox(5),
        ),
        "silent-after-greeting" => (Mode::SilentAfterGreeting, inbox(5)),
        "silent-mid-fetch" => (Mode::SilentMidFetch, inbox(5)),
        "close-mid-fetch" => (Mode::CloseMidFetch, inbox(5)),
        "omitted-uids" => (
            Mode::OmitUids {
                missing: vec![2, 7],
                vanished: vec![4],
                flaky: vec![5],
            },
            inbox(10),
        ),
        "garbage-fetch" => (Mode::GarbageFetch, inbox(10)),
        "unsolicited" => (Mode::Unsolicited { count: 30_000 }, inbox(5)),
        "huge-appenduid" => (Mode::HugeAppendUid, inbox(0)),
        "colliding-names" => (Mode::Honest, colliding_mailboxes(2)),
        "control-names" => (Mode::Honest, control_mailboxes(2)),
        _ => return None,
    };
    Some(HostileConfig { mode, mailboxes })
}

/// Every name [`scenario`] knows.
pub const SCENARIOS: &[&str] = &[
    "honest",
    "huge-literal-announced",
    "huge-literal-3g",
    "endless-line",
    "trickle",
    "silent-after-greeting",
    "silent-mid-fetch",
    "close-mid-fetch",
    "omitted-uids",
    "garbage-fetch",
    "unsolicited",
    "huge-appenduid",
    "colliding-names",
    "control-names",
];

const CAPS: &str = "IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND ID";
const UIDVALIDITY: u32 = 7;

/// One token of a command: an atom or parenthesised list (as text), a quoted string
/// (unescaped) or a literal.
#[derive(Clone, Debug)]
enum Tok {
    Atom(String),
    Str(Vec<u8>),
    Lit(Vec<u8>),
}

impl Tok {
    fn bytes(&self) -> &[u8] {
        match self {
            Tok::Atom(a) => a.as_bytes(),
            Tok::Str(s) | Tok::Lit(s) => s,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

/// Splits one line of a command into tokens; a trailing `{n}` / `{n+}` is returned apart.
fn tokenize(line: &[u8]) -> (Vec<Tok>, Option<(usize, bool)>) {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < line.len() && line[i] != b'"' {
                    if line[i] == b'\\' && i + 1 < line.len() {
                        i += 1;
                    }
                    s.push(line[i]);
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            b'(' => {
                let start = i;
                let mut depth = 0;
                while i < line.len() {
                    match line[i] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                toks.push(Tok::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
            _ => {
                let start = i;
                while i < line.len() && line[i] != b' ' {
                    i += 1;
                }
                toks.push(Tok::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
        }
    }
    let lit = match toks.last() {
        Some(Tok::Atom(a)) if a.starts_with('{') && a.ends_with('}') => {
            let inner = &a[1..a.len() - 1];
            let (digits, plus) = match inner.strip_suffix('+') {
                Some(d) => (d, true),
                None => (inner, false),
            };
            digits.parse().ok().map(|n| (n, plus))
        }
        _ => None,
    };
    if lit.is_some() {
        toks.pop();
    }
    (toks, lit)
}

/// Reads one command with its literals; `None` at the end of the connection.
async fn read_command<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    w: &mut OwnedWriteHalf,
) -> std::io::Result<Option<Vec<Tok>>> {
    let mut toks = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let (mut t, lit) = tokenize(&line);
        toks.append(&mut t);
        let Some((n, plus)) = lit else {
            return Ok(Some(toks));
        };
        if n > 64 << 20 {
            return Err(std::io::Error::other(
                "literal too large for the test server",
            ));
        }
        if !plus {
            w.write_all(b"+ go ahead\r\n").await?;
        }
        let mut data = vec![0u8; n];
        r.read_exact(&mut data).await?;
        toks.push(Tok::Lit(data));
    }
}

/// A mailbox name or string as the server sends it: quoted when it can be, else a literal.
fn astring(name: &[u8]) -> Vec<u8> {
    if name
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        let mut v = format!("{{{}}}\r\n", name.len()).into_bytes();
        v.extend_from_slice(name);
        v
    } else {
        let mut v = vec![b'"'];
        for &b in name {
            if b == b'"' || b == b'\\' {
                v.push(b'\\');
            }
            v.push(b);
        }
        v.push(b'"');
        v
    }
}

fn lock<T>(m: &Mutex<T>) -> std::io::Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| std::io::Error::other("poisoned"))
}

/// The FETCH answer for one message: `(head, body, tail)` where `body` is the literal's
/// bytes (after the `{n}\r\n` that ends `head`) or empty.
fn fetch_parts(seq: usize, m: &FakeMessage, items: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut head = format!(
        "* {seq} FETCH (UID {} FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE {}",
        m.uid,
        m.raw.len()
    );
    if items.contains("HEADER.FIELDS") {
        let hdr = message_id_field(&m.raw);
        head.push_str(&format!(
            " BODY[HEADER.FIELDS (MESSAGE-ID)] {{{}}}\r\n",
            hdr.len()
        ));
        return (head.into_bytes(), hdr, b")\r\n".to_vec());
    }
    if items.contains("BODY.PEEK[]") || items.contains("BODY[]") {
        head.push_str(&format!(" BODY[] {{{}}}\r\n", m.raw.len()));
        return (head.into_bytes(), m.raw.clone(), b")\r\n".to_vec());
    }
    head.push_str(")\r\n");
    (head.into_bytes(), Vec::new(), Vec::new())
}

fn joined(parts: (Vec<u8>, Vec<u8>, Vec<u8>)) -> Vec<u8> {
    let (mut a, b, c) = parts;
    a.extend_from_slice(&b);
    a.extend_from_slice(&c);
    a
}

/// Sends `len` bytes of a repeating pattern, 1 MiB at a time.
async fn generate(w: &mut OwnedWriteHalf, len: u64, pattern: &[u8]) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(1 << 20);
    while chunk.len() < 1 << 20 {
        chunk.extend_from_slice(pattern);
    }
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        w.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// Waits until the client goes away, answering nothing.
async fn sit_silent<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<()> {
    let mut sink = [0u8; 4096];
    while r.read(&mut sink).await? > 0 {}
    Ok(())
}

async fn serve(sock: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    shared.stats.connections.fetch_add(1, Ordering::SeqCst);
    let _ = sock.set_nodelay(true);
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(format!("* OK [CAPABILITY {CAPS}] hostile test server ready\r\n").as_bytes())
        .await?;
    if shared.mode == Mode::SilentAfterGreeting {
        return sit_silent(&mut r).await;
    }
    let mut selected: Option<Vec<u8>> = None;
    while let Some(toks) = read_command(&mut r, &mut w).await? {
        let Some(tag) = toks.first().map(Tok::text) else {
            continue;
        };
        let verb = toks
            .get(1)
            .map(Tok::text)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let args = &toks[2.min(toks.len())..];
        if let Ok(mut log) = shared.stats.commands.lock() {
            let shown: Vec<String> = toks[1..]
                .iter()
                .map(|t| match t {
                    Tok::Atom(a) => a.clone(),
                    Tok::Lit(s) if s.len() > 64 => format!("{{{}}}", s.len()),
                    Tok::Str(s) | Tok::Lit(s) => format!("{:?}", String::from_utf8_lossy(s)),
                })
                .collect();
            log.push(shown.join(" "));
        }
        let mut out: Vec<u8> = Vec::new();
        match verb.as_str() {
            "CAPABILITY" => {
                out.extend(format!("* CAPABILITY {CAPS}\r\n{tag} OK done\r\n").bytes());
            }
            "LOGIN" | "AUTHENTICATE" => {
                shared.stats.logins.fetch_add(1, Ordering::SeqCst);
                out.extend(format!("{tag} OK [CAPABILITY {CAPS}] logged in\r\n").bytes());
            }
            "ID" => out.extend(format!("* ID NIL\r\n{tag} OK done\r\n").bytes()),
            "NOOP" => out.extend(format!("{tag} OK done\r\n").bytes()),
            "LOGOUT" => {
                w.write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes())
                    .await?;
                return Ok(());
            }
            "LIST" => {
                let pattern = args.get(1).map(|t| t.bytes().to_vec()).unwrap_or_default();
                if pattern.is_empty() {
                    out.extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
                } else {
                    for m in lock(&shared.mailboxes)?.iter() {
                        out.extend(format!("* LIST ({}) \"/\" ", m.attributes).bytes());
                        out.extend(astring(m.name.as_bytes()));
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend(format!("{tag} OK LIST done\r\n").bytes());
            }
            "SELECT" | "EXAMINE" | "STATUS" => {
                let name = args.first().map(|t| t.bytes().to_vec()).unwrap_or_default();
                let mut boxes = lock(&shared.mailboxes)?;
                match find(&mut boxes, &name) {
                    Some(m) => {
                        let next = m.messages.last().map_or(1, |x| x.uid + 1);
                        if verb == "STATUS" {
                            out.extend_from_slice(b"* STATUS ");
                            out.extend(astring(&name));
                            out.extend(
                                format!(
                                    " (MESSAGES {} UIDNEXT {next} UIDVALIDITY {UIDVALIDITY})\r\n{tag} OK done\r\n",
                                    m.messages.len()
                                )
                                .bytes(),
                            );
                        } else {
                            selected = Some(name.clone());
                            out.extend(
                                format!(
                                    "* FLAGS (\\Seen \\Deleted)\r\n* {} EXISTS\r\n* OK [UIDVALIDITY {UIDVALIDITY}] ok\r\n* OK [UIDNEXT {next}] ok\r\n{tag} OK done\r\n",
                                    m.messages.len()
                                )
                                .bytes(),
                            );
                        }
                    }
                    None => {
                        out.extend(format!("{tag} NO [NONEXISTENT] no such mailbox\r\n").bytes())
                    }
                }
            }
            "CREATE" => {
                let name = args.first().map(Tok::text).unwrap_or_default();
                let mut boxes = lock(&shared.mailboxes)?;
                if boxes.iter().any(|m| m.name == name) {
                    out.extend(format!("{tag} NO [ALREADYEXISTS] exists\r\n").bytes());
                } else {
                    boxes.push(FakeMailbox {
                        name,
                        attributes: "\\HasNoChildren".into(),
                        messages: Vec::new(),
                    });
                    out.extend(format!("{tag} OK created\r\n").bytes());
                }
            }
            "APPEND" => out.extend(append(&shared, &tag, args)?),
            "UID" => {
                let sub = args
                    .first()
                    .map(Tok::text)
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let Some(sel) = selected.clone() else {
                    w.write_all(format!("{tag} BAD nothing selected\r\n").as_bytes())
                        .await?;
                    continue;
                };
                let messages = {
                    let mut boxes = lock(&shared.mailboxes)?;
                    find(&mut boxes, &sel)
                        .map(|m| m.messages.clone())
                        .unwrap_or_default()
                };
                let max = messages.last().map_or(0, |m| m.uid);
                match sub.as_str() {
                    "SEARCH" => {
                        let toks: Vec<String> = args[1..].iter().map(Tok::text).collect();
                        let set = toks
                            .iter()
                            .position(|t| t.eq_ignore_ascii_case("UID"))
                            .and_then(|i| toks.get(i + 1));
                        let gone = lock(&shared.gone)?.clone();
                        let uids: Vec<String> = messages
                            .iter()
                            .filter(|m| set.is_none_or(|s| in_set(s, m.uid, max)))
                            .filter(|m| !gone.contains(&m.uid))
                            .map(|m| m.uid.to_string())
                            .collect();
                        out.extend(
                            format!("* SEARCH {}\r\n{tag} OK done\r\n", uids.join(" ")).bytes(),
                        );
                    }
                    "FETCH" => {
                        let set = args.get(1).map(Tok::text).unwrap_or_default();
                        let items = args
                            .get(2)
                            .map(Tok::text)
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        let wanted: Vec<(usize, &FakeMessage)> = messages
                            .iter()
                            .enumerate()
                            .filter(|(_, m)| in_set(&set, m.uid, max))
                            .map(|(i, m)| (i + 1, m))
                            .collect();
                        let keep_open = fetch(&shared, &mut w, &tag, &items, &wanted).await?;
                        if !keep_open {
                            return Ok(());
                        }
                        continue;
                    }
                    "STORE" | "EXPUNGE" => out.extend(format!("{tag} OK done\r\n").bytes()),
                    _ => out.extend(format!("{tag} BAD unknown UID command\r\n").bytes()),
                }
            }
            _ => out.extend(format!("{tag} BAD unknown command\r\n").bytes()),
        }
        w.write_all(&out).await?;
    }
    Ok(())
}

/// APPEND / MULTIAPPEND: `mailbox ([flags] [date] literal)+`.
fn append(shared: &Shared, tag: &str, args: &[Tok]) -> std::io::Result<Vec<u8>> {
    let Some(name) = args.first() else {
        return Ok(format!("{tag} BAD no mailbox\r\n").into_bytes());
    };
    let bodies: Vec<Vec<u8>> = args[1..]
        .iter()
        .filter_map(|t| match t {
            Tok::Lit(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let mut boxes = lock(&shared.mailboxes)?;
    let Some(mb) = find(&mut boxes, name.bytes()) else {
        return Ok(format!("{tag} NO [TRYCREATE] no such mailbox\r\n").into_bytes());
    };
    let first = mb.messages.last().map_or(1, |m| m.uid + 1);
    for (i, raw) in bodies.iter().enumerate() {
        mb.messages.push(FakeMessage {
            uid: first + i as u32,
            raw: raw.clone(),
            labels: Vec::new(),
            gm_msgid: 0,
        });
    }
    let last = first + bodies.len().saturating_sub(1) as u32;
    let set = if shared.mode == Mode::HugeAppendUid {
        "1:4294967295".to_string()
    } else if last > first {
        format!("{first}:{last}")
    } else {
        first.to_string()
    };
    Ok(format!("{tag} OK [APPENDUID {UIDVALIDITY} {set}] appended\r\n").into_bytes())
}

/// Answers one `UID FETCH` as the mode says; `Ok(false)` when the connection must end.
async fn fetch(
    shared: &Shared,
    w: &mut OwnedWriteHalf,
    tag: &str,
    items: &str,
    wanted: &[(usize, &FakeMessage)],
) -> std::io::Result<bool> {
    let done = format!("{tag} OK FETCH done\r\n").into_bytes();
    match &shared.mode {
        Mode::AnnouncedHugeLiteral { uid } | Mode::HugeLiteral { uid, .. }
            if wanted.iter().any(|(_, m)| m.uid == *uid) =>
        {
            for (seq, m) in wanted {
                if m.uid != *uid {
                    w.write_all(&joined(fetch_parts(*seq, m, items))).await?;
                    continue;
                }
                let size = match &shared.mode {
                    Mode::HugeLiteral { size, .. } => *size,
                    _ => 99_999_999_999,
                };
                let head = format!(
                    "* {seq} FETCH (UID {} FLAGS (\\Seen) RFC822.SIZE {} BODY[] {{{size}}}\r\n",
                    m.uid,
                    size.min(u64::from(u32::MAX))
                );
                w.write_all(head.as_bytes()).await?;
                let pattern = b"Subject: huge\r\n\r\n0123456789abcdefghijklmnopqrstuvwxyz\r\n";
                if matches!(shared.mode, Mode::HugeLiteral { .. }) {
                    generate(w, size, pattern).await?;
                    w.write_all(b")\r\n").await?;
                } else {
                    generate(w, 64 << 10, pattern).await?;
                    // The rest never comes.
                    std::future::pending::<()>().await;
                }
            }
            w.write_all(&done).await?;
        }
        Mode::EndlessLine => {
            w.write_all(b"* 1 FETCH (UID 1 FLAGS (").await?;
            loop {
                generate(w, 1 << 20, b"\\Seen ").await?;
            }
        }
        Mode::Trickle { every } => {
            let mut all = Vec::new();
            for (seq, m) in wanted {
                all.extend(joined(fetch_parts(*seq, m, items)));
            }
            all.extend_from_slice(&done);
            for b in all {
                w.write_all(&[b]).await?;
                tokio::time::sleep(*every).await;
            }
        }
        Mode::SilentMidFetch => {
            let mut all = Vec::new();
            for (seq, m) in wanted {
                all.extend(joined(fetch_parts(*seq, m, items)));
            }
            let first = wanted
                .first()
                .map_or(0, |(seq, m)| joined(fetch_parts(*seq, m, items)).len());
            let cut = (first + 20).min(all.len());
            w.write_all(&all[..cut]).await?;
            std::future::pending::<()>().await;
        }
        Mode::CloseMidFetch => {
            let first = wanted
                .first()
                .map(|(seq, m)| joined(fetch_parts(*seq, m, items)))
                .unwrap_or_default();
            w.write_all(&first[..first.len() / 2]).await?;
            w.shutdown().await?;
            return Ok(false);
        }
        Mode::OmitUids {
            missing,
            vanished,
            flaky,
        } => {
            let mut out = Vec::new();
            for (seq, m) in wanted {
                if missing.contains(&m.uid) {
                    continue;
                }
                if vanished.contains(&m.uid) {
                    lock(&shared.gone)?.insert(m.uid);
                    continue;
                }
                if flaky.contains(&m.uid) && lock(&shared.flaked)?.insert(m.uid) {
                    continue;
                }
                out.extend(joined(fetch_parts(*seq, m, items)));
            }
            out.extend_from_slice(&done);
            w.write_all(&out).await?;
        }
        Mode::GarbageFetch => {
            let mut out = b"* 999 FETCH (\x00\x01\x02 \xff)\r\n* NONSENSE [[[ (\r\n".to_vec();
            for (seq, m) in wanted {
                match m.uid % 5 {
                    0 => out.extend(joined(fetch_parts(*seq, m, items))),
                    1 => out.extend(
                        format!("* {seq} FETCH (UID {} FLAGS (\\Seen))\r\n", m.uid).bytes(),
                    ),
                    2 => {
                        let mut other = (*m).clone();
                        other.uid += 100_000;
                        out.extend(joined(fetch_parts(*seq, &other, items)));
                    }
                    3 => out.extend(
                        format!("* {seq} FETCH (UID {} BODY[] \"broken\r\n", m.uid).bytes(),
                    ),
                    _ => {
                        out.extend(format!("* {seq} FETCH (UID {} BODY[] NIL)\r\n", m.uid).bytes())
                    }
                }
            }
            out.extend_from_slice(&done);
            w.write_all(&out).await?;
        }
        Mode::Unsolicited { count } => {
            let body = vec![b'u'; 1024];
            for i in 0..*count {
                let uid = 1_000_000 + i;
                let mut out = format!(
                    "* {} EXISTS\r\n* {} FETCH (UID {uid} FLAGS (\\Seen) BODY[] {{{}}}\r\n",
                    i + 1,
                    i + 1,
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                out.extend_from_slice(b")\r\n");
                w.write_all(&out).await?;
            }
            let mut out = Vec::new();
            for (seq, m) in wanted {
                out.extend(joined(fetch_parts(*seq, m, items)));
            }
            out.extend_from_slice(&done);
            w.write_all(&out).await?;
        }
        _ => {
            let mut out = Vec::new();
            for (seq, m) in wanted {
                out.extend(joined(fetch_parts(*seq, m, items)));
            }
            out.extend_from_slice(&done);
            w.write_all(&out).await?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_commands_with_literals() {
        let (t, lit) =
            tokenize(b"A1 APPEND \"x\\\"y\" (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {5+}");
        assert_eq!(lit, Some((5, true)));
        assert_eq!(t.len(), 5);
        assert_eq!(t[2].bytes(), b"x\"y");
        assert_eq!(t[3].text(), "(\\Seen)");
        let (t, lit) = tokenize(b"A2 UID FETCH 1:3 (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
        assert_eq!(lit, None);
        assert_eq!(t[4].text(), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
        assert!(scenario("nope").is_none());
        assert!(SCENARIOS.iter().all(|s| scenario(s).is_some()));
    }
}
