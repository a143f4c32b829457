//! [`ImapSink`]: APPEND into a vault, with crash-safe duplicate detection.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use legacyflo_core::request::RESERVED_DEST_FOLDERS;
use legacyflo_core::{
    Error, ErrorKind, Flag, FolderPath, Message, Output, OutputKind, Placement, Result, Settled,
    Sink, SinkState, WriteOutcome,
};
use legacyflo_sources::imap::client::{
    AppendMessage, ConnectOptions, ImapClient, ImapError, uid_set,
};
use legacyflo_sources::imap::header_message_id;
use legacyflo_sources::imap::preset::{self, ImapPreset, Limits};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

/// Where and how to append.
#[derive(Clone, Debug)]
pub struct ImapSinkOptions {
    /// Server, TLS and login.
    pub connect: ConnectOptions,
    /// The flavour (`Vaultastic4`, `Mithi`, …).
    pub preset: ImapPreset,
    /// The folder under which the source hierarchy is recreated (root when empty).
    pub dest_folder: FolderPath,
    /// Limits (timeouts).
    pub limits: Limits,
    /// Messages per APPEND round. 1: each `write` APPENDs at once and answers
    /// `Written { id: Some("UIDVALIDITY:UID") }` (APPENDUID) or `Rejected` exactly. More:
    /// `write` buffers and answers `Written { id: None }`, and the APPENDUID of each message
    /// (or its refusal) is handed to the engine by [`Sink::settled`]; the batch is sent as one
    /// MULTIAPPEND (a single server transaction: several times faster on Dovecot) when it is
    /// full or holds 4 MiB (batches are kept per folder, 16 MiB in all at most), or on
    /// `commit`. Default: the preset's
    /// [`Limits::append_batch`].
    pub append_batch: usize,
}

impl ImapSinkOptions {
    /// Options with the preset's limits.
    pub fn new(connect: ConnectOptions, preset: ImapPreset, dest_folder: FolderPath) -> Self {
        let limits = preset::limits(preset);
        let mut connect = connect;
        connect.timeout = limits.timeout;
        ImapSinkOptions {
            connect,
            preset,
            dest_folder,
            append_batch: limits.append_batch,
            limits,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    uidvalidity: u32,
    uidnext: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    /// Per destination mailbox (wire name): everything below `uidnext` was committed.
    mailboxes: BTreeMap<String, Mark>,
    /// Messages written, over all runs.
    messages: u64,
}

/// Messages already in a mailbox that a re-delivery may match: Message-ID → (size, date).
#[derive(Debug, Default)]
struct Present(HashMap<String, Vec<(u64, Option<i64>)>>);

impl Present {
    fn add(&mut self, message_id: String, size: u64, date: Option<i64>) {
        self.0.entry(message_id).or_default().push((size, date));
    }

    /// Removes and reports a stored copy of `m`: same Message-ID, same size (as sent or
    /// with bare LFs counted as CRLF, as servers report it) and same internal date when
    /// `m` has one.
    fn take(&mut self, m: &Message) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let Some(list) = self.0.get_mut(&header_message_id(&m.raw)) else {
            return false;
        };
        let sizes = [m.size(), crlf_size(&m.raw)];
        let date = m.internal_date.map(|d| d.timestamp());
        let pos = list
            .iter()
            .position(|(s, d)| sizes.contains(s) && (date.is_none() || *d == date));
        match pos {
            Some(i) => {
                list.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

fn crlf_size(raw: &[u8]) -> u64 {
    let mut n = raw.len() as u64;
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            n += 1;
        }
    }
    n
}

#[derive(Debug)]
struct Dest {
    mailbox: String,
    uidvalidity: u32,
    /// Next UID when the folder was begun, or after the last APPEND.
    uidnext: u32,
    present: Present,
    /// UIDs appended since the last commit (for `abort`).
    uncommitted: Vec<u32>,
}

/// An IMAP mailbox as a [`Sink`] (the VAULTASTIC4 destination).
///
/// - Folders: `dest_folder / source folder`, each segment encoded in modified UTF-7 and
///   joined with the server's separator (a separator inside a name becomes `_`); missing
///   parents are created. With no destination folder, a top-level name the service
///   reserves (`Drafts`, `Trash`, `Spam`, `Chat`, `Quarantine`, `Archive`) gets
///   ` (migrated)` appended. MITHI puts everything under `INBOX.`.
/// - `write` sends the flags (keywords that are valid atoms) and the internal date with
///   the bytes. With `append_batch == 1` it APPENDs at once (one round trip with
///   `LITERAL+`) and answers `Written { id: "UIDVALIDITY:UID" }` from APPENDUID, or
///   `Rejected` for a `NO` about this one message (too big, refused content). With a
///   larger batch (the default) messages are sent as one MULTIAPPEND per batch and
///   `write` answers `Written { id: None }`; after `commit`, [`Sink::settled`] maps each
///   APPENDUID back to its message (one `APPENDUID v uid` per APPEND, or MULTIAPPEND's
///   uid-set, matched in order), and lists a message the server then refused on its own
///   with the reason. Dropped connections are `Temporary` errors.
/// - Durability: an APPEND the server acknowledged is stored, so `commit` sends the
///   buffered batch and then only records,
///   per mailbox, UIDVALIDITY and the next UID (everything below is committed) plus the
///   message count, in the [`SinkState`].
/// - Bounds: the limits of [`ConnectOptions`] apply (per-command deadline, line length,
///   message size); an `APPENDUID` naming more UIDs than messages were appended is a
///   `Protocol` error, never expanded.
/// - Duplicates: within a run, a (folder, source id) already written answers `Duplicate`.
///   Across crashes and aborts, `begin_folder` reads the identities (Message-ID,
///   RFC822.SIZE, INTERNALDATE; headers only) of the messages above the committed UID of
///   that mailbox (of every message when the mailbox was never committed by this request,
///   or when its UIDVALIDITY changed), and a re-delivered message matching one answers
///   `Duplicate` instead of being appended again. A process killed right after sending an
///   APPEND leaves the server to complete it, maybe after that scan: so a resumed sink (or
///   one that finds messages already there) waits 2 s once before its first scan.
/// - `abort`: an IMAP server cannot take back an APPEND, but the sink knows the UIDs it
///   appended since the last commit and deletes them (`UID STORE +FLAGS.SILENT (\Deleted)`
///   and `UID EXPUNGE`, UIDPLUS). If that is impossible (the connection is gone, a vault
///   refuses deletion), the identity check above keeps the re-delivered messages from
///   being stored twice.
pub struct ImapSink {
    opts: ImapSinkOptions,
    client: Option<ImapClient>,
    separator: Option<char>,
    state: State,
    resumed: bool,
    /// Whether the wait for a killed predecessor's last APPEND is done (once a process).
    waited_for_predecessor: bool,
    dests: HashMap<FolderPath, Dest>,
    seen: HashSet<(FolderPath, String)>,
    seen_uncommitted: Vec<(FolderPath, String)>,
    /// Per folder: messages accepted and not yet sent (batched mode), and their bytes.
    pending: HashMap<FolderPath, (Vec<Pending>, u64)>,
    /// APPENDUIDs and refusals of batched messages sent since the last `settled`.
    settled: Vec<Settled>,
    /// The preset's upload cap ([`Limits::daily_upload_bytes`]).
    budget: preset::Budget,
    finished: Option<Vec<Output>>,
}

/// A message accepted by `write` and not yet sent (batched mode).
struct Pending {
    folder: FolderPath,
    source_id: String,
    /// [`Message::size`] as `write` counted it.
    bytes: u64,
    message: AppendMessage,
}

/// Messages read back from one mailbox at most (the re-delivery check).
const MAX_SCANNED: usize = 4_000_000;

/// How long a resumed sink waits before its first scan of the destination, for the last
/// APPEND of a killed predecessor, which the server may still be completing.
const PREDECESSOR_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Bytes buffered before a batch is sent regardless of its count.
const BATCH_BYTES: u64 = 4 << 20;

/// Waits out the upload cap's window.
async fn pause(wait: std::time::Duration) {
    warn!(
        message = "upload cap reached; pausing",
        seconds = wait.as_secs()
    );
    tokio::time::sleep(wait).await;
}

fn is_message_specific(code: Option<&str>, text: &str) -> bool {
    !code.is_some_and(|c| {
        [
            "TRYCREATE",
            "OVERQUOTA",
            "NOPERM",
            "UNAVAILABLE",
            "LIMIT",
            "INUSE",
            "SERVERBUG",
        ]
        .iter()
        .any(|x| x.eq_ignore_ascii_case(c))
    }) && legacyflo_sources::imap::client::suggested_backoff(text).is_none()
}

impl std::fmt::Debug for ImapSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSink")
            .field("server", &self.opts.connect.host)
            .field("dest_folder", &self.opts.dest_folder)
            .finish()
    }
}

fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|b| {
            b > b' '
                && b < 0x7f
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

impl ImapSink {
    /// A sink; nothing is connected until [`Sink::open`].
    pub fn new(opts: ImapSinkOptions) -> ImapSink {
        let budget = preset::Budget::new(opts.limits.daily_upload_bytes, opts.limits.cap_window);
        ImapSink {
            budget,
            opts,
            client: None,
            separator: None,
            state: State::default(),
            resumed: false,
            waited_for_predecessor: false,
            dests: HashMap::new(),
            seen: HashSet::new(),
            seen_uncommitted: Vec::new(),
            pending: HashMap::new(),
            settled: Vec::new(),
            finished: None,
        }
    }

    async fn client(&mut self) -> Result<&mut ImapClient> {
        if self.client.is_none() {
            let mut c = ImapClient::connect(&self.opts.connect).await?;
            if self.separator.is_none() {
                self.separator = Some(c.separator().await?.unwrap_or('/'));
            }
            self.client = Some(c);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::backend("imap", ErrorKind::Other, "no connection"))
    }

    /// Drops the connection when `e` means it is unusable.
    fn check<T>(&mut self, r: std::result::Result<T, ImapError>) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.kind() == ErrorKind::Temporary || e.kind() == ErrorKind::Protocol {
                    self.client = None;
                }
                Err(e.into())
            }
        }
    }

    /// The wire name of the mailbox for `folder`.
    fn mailbox_name(&self, folder: &FolderPath) -> (String, Vec<String>) {
        let sep = self.separator.unwrap_or('/');
        let mut segs: Vec<String> = self.opts.dest_folder.segments().to_vec();
        let base = segs.len();
        segs.extend(folder.segments().iter().cloned());
        if base == 0
            && let Some(first) = segs.first_mut()
            && RESERVED_DEST_FOLDERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(first))
        {
            first.push_str(" (migrated)");
        }
        if self.opts.preset == ImapPreset::Mithi
            && !segs
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case("INBOX"))
        {
            segs.insert(0, "INBOX".into());
        }
        if segs.is_empty() {
            segs.push("INBOX".into());
        }
        let enc: Vec<String> = segs
            .iter()
            .map(|s| legacyflo_core::codec::mutf7_encode(&s.replace(sep, "_")))
            .collect();
        let mut prefixes = Vec::new();
        for i in 1..enc.len() {
            prefixes.push(enc[..i].join(&sep.to_string()));
        }
        (enc.join(&sep.to_string()), prefixes)
    }

    /// Reads the identities of the messages from UID `from` on.
    async fn scan(&mut self, mailbox: &str, from: u32) -> Result<Present> {
        let client = self.client().await?;
        let r = client.select(mailbox, true).await;
        let info = self.check(r)?;
        let mut present = Present::default();
        if info.exists == 0 {
            return Ok(present);
        }
        let client = self.client().await?;
        // Each UID once, and no more of them than the mailbox said it holds.
        let most = (info.exists as usize).min(MAX_SCANNED);
        let mut seen = HashSet::new();
        let r = client
            .uid_fetch_each(
                &format!("{}:*", from.max(1)),
                "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
                mailbox,
                &mut |f| {
                    // Only UIDs this mailbox can hold: an answer for a UID at or past
                    // UIDNEXT (or below `from`) is not one of its messages, and trusting it
                    // would make a message look already stored.
                    let Some(u) = f.uid else { return };
                    if u < from || (info.uid_next != 0 && u >= info.uid_next) {
                        return;
                    }
                    if seen.len() > most || !seen.insert(u) {
                        return;
                    }
                    present.add(
                        header_message_id(f.body.as_deref().unwrap_or_default()),
                        u64::from(f.size.unwrap_or(0)),
                        f.internal_date.map(|d| d.timestamp()),
                    );
                },
            )
            .await;
        self.check(r)?;
        if seen.len() > most {
            self.client = None;
            return Err(Error::backend(
                "imap",
                ErrorKind::Protocol,
                format!(
                    "UID FETCH in `{mailbox}` answered for more messages than the {} it holds",
                    info.exists
                ),
            ));
        }
        debug!(message = "scanned destination for re-deliveries", mailbox = %mailbox, from, found = present.0.values().map(Vec::len).sum::<usize>());
        Ok(present)
    }

    /// Sends every folder's buffered messages: per folder one MULTIAPPEND when offered (Dovecot stores it as one
    /// transaction), else pipelined APPENDs. If the server refuses the batch, each message
    /// is retried alone; one refused alone is logged and listed by [`finish`](Sink::finish)
    /// (its `write` already answered `Written`).
    async fn flush_all(&mut self) -> Result<()> {
        let mut folders: Vec<FolderPath> = self.pending.keys().cloned().collect();
        folders.sort();
        for f in folders {
            self.flush(&f).await?;
        }
        Ok(())
    }

    /// Sends `folder`'s buffered messages (see [`flush_all`](Self::flush_all)).
    async fn flush(&mut self, folder: &FolderPath) -> Result<()> {
        let Some((batch, _)) = self.pending.remove(folder) else {
            return Ok(());
        };
        if batch.is_empty() {
            return Ok(());
        }
        let folder = folder.clone();
        let Some(mailbox) = self.dests.get(&folder).map(|d| d.mailbox.clone()) else {
            return Err(Error::backend(
                "imap",
                ErrorKind::Other,
                format!("folder `{folder}` not begun"),
            ));
        };
        let msgs: Vec<AppendMessage> = batch.iter().map(|p| p.message.clone()).collect();
        if let Some(wait) = self.budget.take(batch.iter().map(|p| p.bytes).sum()) {
            pause(wait).await;
        }
        let client = self.client().await?;
        let r = client.append(&mailbox, &msgs).await;
        let uids = match r {
            Ok(uids) => uids,
            Err(ImapError::No { code, text, .. })
                if is_message_specific(code.as_deref(), &text) && msgs.len() > 1 =>
            {
                debug!(message = "batch refused; appending one by one", mailbox = %mailbox, reason = %text);
                let mut uids = Vec::with_capacity(msgs.len());
                for (p, m) in batch.iter().zip(&msgs) {
                    let client = self.client().await?;
                    let r = client.append(&mailbox, std::slice::from_ref(m)).await;
                    match r {
                        Ok(v) => uids.push(v.first().copied().flatten()),
                        Err(ImapError::No { code, text, .. })
                            if is_message_specific(code.as_deref(), &text) =>
                        {
                            self.refused(p, &mailbox, &text);
                            uids.push(None);
                        }
                        Err(e) => return self.check(Err(e)),
                    }
                }
                uids
            }
            Err(ImapError::No { code, text, .. })
                if msgs.len() == 1 && is_message_specific(code.as_deref(), &text) =>
            {
                self.refused(&batch[0], &mailbox, &text);
                return Ok(());
            }
            Err(e) => return self.check(Err(e)),
        };
        let Some(d) = self.dests.get_mut(&folder) else {
            return Ok(());
        };
        let mut missing = 0usize;
        for (p, uid) in batch.iter().zip(uids) {
            match uid {
                Some((v, u)) => {
                    if v == d.uidvalidity {
                        d.uidnext = d.uidnext.max(u.saturating_add(1));
                    }
                    d.uncommitted.push(u);
                    self.settled.push(Settled::Stored(Placement {
                        folder: p.folder.clone(),
                        source_id: p.source_id.clone(),
                        id: format!("{v}:{u}"),
                    }));
                }
                None => missing += 1,
            }
        }
        if missing > 0 {
            debug!(message = "APPEND without APPENDUID (no UIDPLUS?)", mailbox = %mailbox, messages = missing);
        }
        Ok(())
    }

    /// Records that the server refused `p` on its own after `write` accepted it.
    fn refused(&mut self, p: &Pending, mailbox: &str, text: &str) {
        warn!(message = "APPEND refused", folder = %p.folder, source_id = %p.source_id, reason = %text);
        self.state.messages = self.state.messages.saturating_sub(1);
        self.settled.push(Settled::Refused {
            folder: p.folder.clone(),
            source_id: p.source_id.clone(),
            bytes: p.bytes,
            reason: format!("APPEND to `{mailbox}` refused: {text}"),
        });
    }

    fn location(&self) -> String {
        format!(
            "imap://{}@{}:{}/{}",
            match &self.opts.connect.credentials {
                legacyflo_sources::imap::Credentials::Login { user, .. }
                | legacyflo_sources::imap::Credentials::Plain { user, .. }
                | legacyflo_sources::imap::Credentials::XOAuth2 { user, .. } => user.clone(),
            },
            self.opts.connect.host,
            self.opts.connect.port,
            self.opts.dest_folder
        )
    }
}

#[async_trait]
impl Sink for ImapSink {
    fn kind(&self) -> &str {
        "imap"
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        if let Some(s) = resume {
            self.state = serde_json::from_value(s)
                .map_err(|e| Error::State(format!("IMAP sink state is not understood: {e}")))?;
            self.resumed = true;
        }
        self.client().await?;
        info!(message = "IMAP destination open", server = %self.opts.connect.host, resumed = self.resumed);
        Ok(())
    }

    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        if self.dests.contains_key(folder) {
            return Ok(());
        }
        self.client().await?;
        let (mailbox, parents) = self.mailbox_name(folder);
        for p in parents.iter().chain(std::iter::once(&mailbox)) {
            let client = self.client().await?;
            let r = client.create(p).await;
            self.check(r)?;
        }
        let client = self.client().await?;
        let r = client.status(&mailbox).await;
        let mut status = self.check(r)?;
        let mark = self.state.mailboxes.get(&mailbox).copied();
        if !self.waited_for_predecessor && (self.resumed || status.exists > 0) {
            // A process killed right after sending its last APPEND leaves the server to
            // complete it, possibly after this scan (seen in the kill campaign: the batch
            // was then stored twice). Before the first scan give such a command time to
            // end, then read the mailbox again.
            self.waited_for_predecessor = true;
            debug!(
                message = "waiting for a killed predecessor's last APPEND",
                wait_ms = PREDECESSOR_WAIT.as_millis() as u64
            );
            tokio::time::sleep(PREDECESSOR_WAIT).await;
            let client = self.client().await?;
            let r = client.status(&mailbox).await;
            status = self.check(r)?;
        }
        let present = match mark {
            Some(m) if m.uidvalidity == status.uid_validity => {
                if m.uidnext < status.uid_next {
                    self.scan(&mailbox, m.uidnext).await?
                } else {
                    Present::default()
                }
            }
            _ if status.exists > 0 => {
                // Never committed by this request (or renumbered): anything already there
                // may be ours from a run that crashed before its first commit.
                self.scan(&mailbox, 1).await?
            }
            _ => Present::default(),
        };
        let uidnext = match mark {
            Some(m) if m.uidvalidity == status.uid_validity => m.uidnext,
            _ => status.uid_next,
        };
        self.dests.insert(
            folder.clone(),
            Dest {
                mailbox,
                uidvalidity: status.uid_validity,
                uidnext,
                present,
                uncommitted: Vec::new(),
            },
        );
        Ok(())
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        let key = (message.folder.clone(), message.source_id.clone());
        if self.seen.contains(&key) {
            return Ok(WriteOutcome::Duplicate);
        }
        if !self.dests.contains_key(&message.folder) {
            self.begin_folder(&message.folder).await?;
        }
        let Some(dest) = self.dests.get_mut(&message.folder) else {
            return Err(Error::backend(
                "imap",
                ErrorKind::Other,
                format!("folder `{}` not begun", message.folder),
            ));
        };
        if dest.present.take(message) {
            debug!(message = "already in the destination", folder = %message.folder, source_id = %message.source_id);
            self.seen.insert(key.clone());
            self.seen_uncommitted.push(key);
            return Ok(WriteOutcome::Duplicate);
        }
        let mailbox = dest.mailbox.clone();
        let flags: Vec<String> = message
            .flags
            .iter()
            .filter(|f| !matches!(f, Flag::Keyword(k) if !valid_keyword(k)))
            .map(|f| f.as_imap().to_string())
            .collect();
        let am = AppendMessage {
            body: message.raw.clone(),
            flags,
            internal_date: message.internal_date,
        };
        // Servers refuse empty messages: send those alone so the refusal is reported
        // exactly (`Rejected`).
        if self.opts.append_batch > 1 && !message.raw.is_empty() {
            let entry = self.pending.entry(message.folder.clone()).or_default();
            entry.1 += message.size();
            entry.0.push(Pending {
                folder: message.folder.clone(),
                source_id: message.source_id.clone(),
                bytes: message.size(),
                message: am,
            });
            let full = entry.0.len() >= self.opts.append_batch || entry.1 >= BATCH_BYTES;
            self.seen.insert(key.clone());
            self.seen_uncommitted.push(key);
            self.state.messages += 1;
            if full {
                self.flush(&message.folder).await?;
            } else if self.pending.values().map(|p| p.1).sum::<u64>() >= 4 * BATCH_BYTES {
                // Many folders each holding a part batch: bound the memory.
                self.flush_all().await?;
            }
            return Ok(WriteOutcome::Written { id: None });
        }
        self.flush(&message.folder).await?;
        if let Some(wait) = self.budget.take(message.size()) {
            pause(wait).await;
        }
        let client = self.client().await?;
        let r = client.append(&mailbox, std::slice::from_ref(&am)).await;
        let uid = match r {
            Ok(v) => v.first().copied().flatten(),
            Err(ImapError::No { code, text, .. })
                if is_message_specific(code.as_deref(), &text) =>
            {
                warn!(message = "APPEND refused", folder = %message.folder, source_id = %message.source_id, reason = %text);
                return Ok(WriteOutcome::Rejected {
                    reason: format!("APPEND to `{}` refused: {text}", message.folder),
                });
            }
            Err(e) => return self.check(Err(e)),
        };
        let dest = self.dests.get_mut(&message.folder);
        let id = match (uid, dest) {
            (Some((v, u)), Some(d)) => {
                if v == d.uidvalidity {
                    d.uidnext = d.uidnext.max(u.saturating_add(1));
                }
                d.uncommitted.push(u);
                Some(format!("{v}:{u}"))
            }
            _ => None,
        };
        self.seen.insert(key.clone());
        self.seen_uncommitted.push(key);
        self.state.messages += 1;
        Ok(WriteOutcome::Written { id })
    }

    async fn commit(&mut self) -> Result<SinkState> {
        self.flush_all().await?;
        for d in self.dests.values_mut() {
            self.state.mailboxes.insert(
                d.mailbox.clone(),
                Mark {
                    uidvalidity: d.uidvalidity,
                    uidnext: d.uidnext,
                },
            );
            d.uncommitted.clear();
        }
        self.seen_uncommitted.clear();
        self.state.version = 1;
        serde_json::to_value(&self.state).map_err(|e| Error::State(format!("IMAP sink state: {e}")))
    }

    async fn abort(&mut self) -> Result<()> {
        self.state.messages = self
            .state
            .messages
            .saturating_sub(self.pending.values().map(|p| p.0.len() as u64).sum());
        self.pending.clear();
        self.settled.clear();
        let mut undo: Vec<(String, Vec<u32>)> = Vec::new();
        for d in self.dests.values() {
            if !d.uncommitted.is_empty() {
                undo.push((d.mailbox.clone(), d.uncommitted.clone()));
            }
        }
        for key in self.seen_uncommitted.drain(..) {
            self.seen.remove(&key);
        }
        self.dests.clear();
        for (mailbox, uids) in undo {
            let set = {
                let mut u = uids.clone();
                u.sort_unstable();
                uid_set(&u)
            };
            let res: std::result::Result<(), ImapError> = async {
                let client = match self.client().await {
                    Ok(c) => c,
                    Err(e) => {
                        return Err(ImapError::Config(format!("reconnect: {e}")));
                    }
                };
                if !client.has_capability("UIDPLUS") {
                    return Err(ImapError::Config(
                        "no UIDPLUS: cannot expunge single messages".into(),
                    ));
                }
                client.select(&mailbox, false).await?;
                client
                    .simple(
                        &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
                        "UID STORE",
                        Some(&mailbox),
                    )
                    .await?;
                client
                    .simple(&format!("UID EXPUNGE {set}"), "UID EXPUNGE", Some(&mailbox))
                    .await?;
                Ok(())
            }
            .await;
            match res {
                Ok(()) => {
                    self.state.messages = self.state.messages.saturating_sub(uids.len() as u64);
                    info!(message = "aborted: removed uncommitted APPENDs", mailbox = %mailbox, messages = uids.len());
                }
                Err(e) => {
                    self.client = None;
                    warn!(message = "aborted: could not remove uncommitted APPENDs; re-deliveries will be detected by identity", mailbox = %mailbox, error = %e);
                }
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        if let Some(out) = &self.finished {
            return Ok(out.clone());
        }
        self.commit().await?;
        if let Some(c) = self.client.take() {
            c.logout().await;
        }
        let out = vec![Output {
            location: self.location(),
            kind: OutputKind::Mailbox,
            bytes: None,
            messages: self.state.messages,
        }];
        self.finished = Some(out.clone());
        Ok(out)
    }

    fn settled(&mut self) -> Vec<Settled> {
        std::mem::take(&mut self.settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_matching() {
        let mut p = Present::default();
        let mut m = Message::new(
            &b"Message-ID: <a@b>\nSubject: x\n\nbody\n"[..],
            FolderPath::inbox(),
            "1",
        );
        p.add("<a@b>".into(), crlf_size(&m.raw), Some(5));
        m.internal_date = chrono::DateTime::from_timestamp(6, 0);
        assert!(!p.take(&m));
        m.internal_date = chrono::DateTime::from_timestamp(5, 0);
        assert!(p.take(&m));
        assert!(!p.take(&m));
        assert!(valid_keyword("$Forwarded"));
        assert!(!valid_keyword("has space"));
    }
}
