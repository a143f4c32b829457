//! [`ImapSource`]: reads an IMAP account, folder by folder, with pipelined `UID FETCH`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Days, Utc};
use legacyflo_core::{
    Filter, Flag, FolderInfo, FolderPath, Message, MessageStream, Position, Result, Source,
    SourceCapabilities, SourceEvent, SourceItem,
};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use super::client::{
    ConnectOptions, FetchItem, ImapClient, ImapError, MailboxInfo, Reply, uid_set,
};
use super::preset::{self, ImapPreset, Limits};

/// How to reach and read the account.
#[derive(Clone, Debug)]
pub struct ImapSourceOptions {
    /// Server, TLS and login.
    pub connect: ConnectOptions,
    /// The provider flavour (folder rules, Gmail labels).
    pub preset: ImapPreset,
    /// Limits; [`preset::limits`] gives the provider's defaults.
    pub limits: Limits,
    /// Only migrate the sub-tree under this mailbox (decoded UTF-8 name, server separator),
    /// presenting folders relative to it. `None`: the whole account.
    pub root: Option<String>,
}

impl ImapSourceOptions {
    /// Options with the preset's limits and no root.
    pub fn new(connect: ConnectOptions, preset: ImapPreset) -> Self {
        let limits = preset::limits(preset);
        let mut connect = connect;
        connect.timeout = limits.timeout;
        ImapSourceOptions {
            connect,
            preset,
            limits,
            root: None,
        }
    }
}

/// An IMAP mailbox as a [`Source`].
///
/// - Folders: `LIST "" "*"` (with RFC 6154 special use), names decoded from modified
///   UTF-7 and split on the server's separator; the preset drops what it does not migrate
///   (see [`preset::keeps`]). `\Noselect` folders are listed as not selectable.
/// - Nothing new: when the server has LIST-STATUS (RFC 5819) the listing carries every
///   mailbox's UIDVALIDITY and UIDNEXT; a folder whose checkpoint already reaches
///   UIDNEXT - 1 under the same UIDVALIDITY is streamed as empty without a connection, so a
///   re-run that finds nothing new costs one login and one `LIST`.
/// - Order: ascending UID within a folder, the same on every run while UIDVALIDITY holds.
/// - Position: `UIDVALIDITY:UID:IDENTITY`, where IDENTITY is [`message_identity`] of the
///   message (16 hex digits of SHA-256 over Message-ID, INTERNALDATE and RFC822.SIZE);
///   on Gmail it is `gm` and the X-GM-MSGID in hex, exact and stable. Resuming with the same UIDVALIDITY yields the UIDs above UID. If UIDVALIDITY
///   changed (the server rebuilt the folder and renumbered it), the source fetches every
///   message's identity (headers only), finds the first message with IDENTITY and
///   continues after it, since a renumbering keeps the order; if it is not there any more
///   the stream fails with `InvalidInput` instead of copying the folder a second time.
/// - Dates: the filter is pushed down as `UID SEARCH SINCE/BEFORE`. IMAP compares dates
///   only, in the server's time zone, so the window is widened by one day on each side
///   and the engine's exact `since <= date < before` check on INTERNALDATE does the rest.
/// - Ids: a message's `source_id` is `UIDVALIDITY:UID`; on Gmail it is the X-GM-MSGID in
///   hex (Gmail's id for the message, as its API shows it), and its X-GM-LABELS are the
///   message's `labels`.
/// - Never modifies the mailbox: `EXAMINE` and `BODY.PEEK[]`.
/// - A dropped connection fails the stream with a `Temporary` error; the engine calls
///   [`stream`](Source::stream) again with the last position and a new connection is made.
/// - Connections are pooled and limited to `limits.max_connections`.
pub struct ImapSource {
    opts: ImapSourceOptions,
    pool: Mutex<Vec<ImapClient>>,
    permits: Arc<Semaphore>,
    names: tokio::sync::Mutex<Option<HashMap<FolderPath, Listed>>>,
    budget: preset::Budget,
}

impl std::fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSource")
            .field("server", &self.opts.connect.host)
            .field("preset", &self.opts.preset)
            .finish()
    }
}

/// A folder as the last `LIST` showed it.
#[derive(Clone, Debug)]
struct Listed {
    /// Its name on the wire (modified UTF-7).
    raw: String,
    selectable: bool,
    /// Its `STATUS` at listing time (LIST-STATUS), when the server sent it.
    status: Option<MailboxInfo>,
}

/// The identity of a message used when UIDs cannot be trusted: 16 hex digits of SHA-256
/// over its Message-ID header value (empty when missing), its internal date (unix seconds,
/// empty when unknown) and its size.
pub fn message_identity(message_id: &str, date: Option<DateTime<Utc>>, size: u64) -> String {
    let d = date.map(|d| d.timestamp().to_string()).unwrap_or_default();
    let h = Sha256::digest(format!("{message_id}\u{1}{d}\u{1}{size}").as_bytes());
    hex::encode(&h[..8])
}

/// The identity of a Gmail message: `gm` and its X-GM-MSGID in hex (Gmail's own stable
/// id, the one its web interface and API show), which survives a UIDVALIDITY change.
fn gmail_identity(msgid: u64) -> String {
    format!("gm{msgid:x}")
}

/// The Message-ID header value of a raw message (or of a header block), trimmed; empty
/// when there is none.
pub fn header_message_id(raw: &[u8]) -> String {
    let end = find_header_end(raw);
    let head = &raw[..end];
    let mut lines = head.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let mut v = String::from_utf8_lossy(&line[11..]).trim().to_string();
            while let Some(next) = lines.peek() {
                if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                    v.push_str(String::from_utf8_lossy(next).trim());
                    lines.next();
                } else {
                    break;
                }
            }
            return v;
        }
    }
    String::new()
}

fn find_header_end(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return i + 1;
            }
        }
        i += 1;
    }
    raw.len()
}

/// Parses a position: `(uidvalidity, uid, identity)`.
fn parse_position(p: &str) -> Option<(u32, u32, Option<String>)> {
    let mut it = p.splitn(3, ':');
    let v = it.next()?.parse().ok()?;
    let u = it.next()?.parse().ok()?;
    Some((v, u, it.next().map(str::to_string)))
}

fn imap_date(d: chrono::NaiveDate) -> String {
    d.format("%d-%b-%Y").to_string()
}

/// The `UID SEARCH` criteria for `filter` from `start_uid` on.
fn search_criteria(filter: &Filter, start_uid: u32) -> String {
    let mut c = Vec::new();
    if start_uid > 1 {
        c.push(format!("UID {start_uid}:*"));
    }
    if let Some(s) = filter.since.and_then(|d| d.checked_sub_days(Days::new(1))) {
        c.push(format!("SINCE {}", imap_date(s)));
    }
    if let Some(b) = filter.before.and_then(|d| d.checked_add_days(Days::new(1))) {
        c.push(format!("BEFORE {}", imap_date(b)));
    }
    if c.is_empty() {
        "ALL".to_string()
    } else {
        c.join(" ")
    }
}

impl ImapSource {
    /// A source; nothing is connected until it is used.
    pub fn new(opts: ImapSourceOptions) -> ImapSource {
        let n = opts.limits.max_connections.max(1);
        let budget = preset::Budget::new(opts.limits.daily_download_bytes, opts.limits.cap_window);
        ImapSource {
            opts,
            pool: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(n)),
            names: tokio::sync::Mutex::new(None),
            budget,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ImapSourceOptions {
        &self.opts
    }

    async fn checkout(&self) -> Result<(ImapClient, OwnedSemaphorePermit)> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
            legacyflo_core::Error::backend(
                "imap",
                legacyflo_core::ErrorKind::Other,
                "connection pool closed",
            )
        })?;
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let client = match pooled {
            Some(c) => c,
            None => ImapClient::connect(&self.opts.connect).await?,
        };
        Ok((client, permit))
    }

    fn checkin(&self, client: ImapClient) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(client);
        }
    }

    /// Counts downloaded bytes against the daily cap; returns how long to pause.
    fn account(&self, bytes: u64) -> Option<std::time::Duration> {
        self.budget.take(bytes)
    }

    async fn folder_map(&self) -> Result<Vec<(FolderInfo, Listed)>> {
        let (mut client, permit) = self.checkout().await?;
        let entries = client.list().await;
        let entries = match entries {
            Ok(e) => {
                self.checkin(client);
                e
            }
            Err(e) => return Err(e.into()),
        };
        drop(permit);
        let root: Vec<String> = match &self.opts.root {
            Some(r) => {
                let sep = entries.iter().find_map(|e| e.delimiter).unwrap_or('/');
                r.split(sep)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for e in entries {
            let full: Vec<String> = match e.delimiter {
                Some(c) => e
                    .name
                    .split(c)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                None => vec![e.name.clone()],
            };
            if !preset::keeps(self.opts.preset, &e, &full) {
                debug!(message = "folder skipped by preset", folder = %e.name);
                continue;
            }
            if full.len() <= root.len() || full[..root.len()] != root[..] {
                continue;
            }
            let mut segs = full[root.len()..].to_vec();
            if preset::strips_inbox_prefix(self.opts.preset)
                && segs.len() > 1
                && segs[0].eq_ignore_ascii_case("INBOX")
            {
                segs.remove(0);
            }
            if segs.len() == 1 && segs[0].eq_ignore_ascii_case("INBOX") {
                segs[0] = "INBOX".into();
            }
            let info = FolderInfo {
                selectable: !e.noselect,
                special_use: e.special_use.clone(),
                ..FolderInfo::new(FolderPath::new(segs))
            };
            let listed = Listed {
                raw: e.raw_name,
                selectable: info.selectable,
                status: e.status,
            };
            out.push((info, listed));
        }
        out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        out.dedup_by(|a, b| a.0.path == b.0.path);
        Ok(out)
    }

    async fn listed(&self, folder: &FolderPath) -> Result<Listed> {
        let mut names = self.names.lock().await;
        if names.as_ref().is_none_or(|n| !n.contains_key(folder)) {
            let map = self.folder_map().await?;
            *names = Some(map.into_iter().map(|(i, l)| (i.path, l)).collect());
        }
        names
            .as_ref()
            .and_then(|n| n.get(folder).cloned())
            .ok_or_else(|| {
                legacyflo_core::Error::backend(
                    "imap",
                    legacyflo_core::ErrorKind::NotFound,
                    format!("no folder `{folder}` on {}", self.opts.connect.host),
                )
            })
    }

    /// Whether the listing's STATUS already shows that `folder` has nothing after `after`:
    /// same UIDVALIDITY and no UID at or above UIDNEXT - 1 beyond the checkpoint (or an
    /// empty mailbox read from the start). Such a folder is done without a connection; a
    /// message delivered after the listing is read by the next run, as with any snapshot.
    fn nothing_new(status: Option<MailboxInfo>, after: Option<&Position>) -> bool {
        let Some(st) = status else {
            return false;
        };
        match after {
            None => st.exists == 0 && st.uid_validity != 0,
            Some(p) => match parse_position(p) {
                Some((v, uid, _)) => {
                    v != 0
                        && v == st.uid_validity
                        && st.uid_next > 0
                        && uid.saturating_add(1) >= st.uid_next
                }
                None => false,
            },
        }
    }

    /// After a UIDVALIDITY change: the UID of the first message whose identity is `ident`.
    async fn relocate(
        &self,
        client: &mut ImapClient,
        raw: &str,
        ident: &str,
    ) -> Result<Option<u32>> {
        let items = if preset::gmail_extensions(self.opts.preset) {
            "(UID RFC822.SIZE INTERNALDATE X-GM-MSGID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        } else {
            "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        };
        let items = client.uid_fetch("1:*", items, raw).await?;
        let mut items: Vec<FetchItem> = items.into_iter().filter(|f| f.uid.is_some()).collect();
        items.sort_by_key(|f| f.uid);
        Ok(items.iter().find_map(|f| {
            let mid = header_message_id(f.body.as_deref().unwrap_or_default());
            let id = match f.gmail_msgid {
                Some(g) => gmail_identity(g),
                None => message_identity(&mid, f.internal_date, u64::from(f.size.unwrap_or(0))),
            };
            (id == ident).then_some(f.uid.unwrap_or(0))
        }))
    }
}

#[async_trait]
impl Source for ImapSource {
    fn kind(&self) -> &str {
        "imap"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            filters_dates: true,
            concurrent_folders: true,
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        let map = self.folder_map().await?;
        let infos = map.iter().map(|(i, _)| i.clone()).collect();
        *self.names.lock().await = Some(map.into_iter().map(|(i, l)| (i.path, l)).collect());
        Ok(infos)
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let listed = self.listed(folder).await?;
        if !listed.selectable {
            // A `\Noselect` folder holds no messages.
            return Ok(Box::pin(futures::stream::empty()));
        }
        if Self::nothing_new(listed.status, after) {
            debug!(message = "nothing new since the checkpoint (LIST-STATUS)", folder = %folder);
            return Ok(Box::pin(futures::stream::empty()));
        }
        let raw = listed.raw;
        let (mut client, permit) = self.checkout().await?;
        let info = client.select(&raw, true).await?;
        let mut start = 1u32;
        if let Some(p) = after {
            let Some((v, uid, ident)) = parse_position(p) else {
                return Err(legacyflo_core::Error::backend(
                    "imap",
                    legacyflo_core::ErrorKind::InvalidInput,
                    format!("`{p}` is not an IMAP position (UIDVALIDITY:UID) for `{folder}`"),
                ));
            };
            if v == info.uid_validity {
                start = uid.saturating_add(1);
            } else {
                warn!(message = "UIDVALIDITY changed; locating the last migrated message by identity", folder = %folder, old = v, new = info.uid_validity);
                let found = match ident {
                    Some(id) if info.exists > 0 => self.relocate(&mut client, &raw, &id).await?,
                    _ => None,
                };
                match found {
                    Some(u) => start = u.saturating_add(1),
                    None => {
                        return Err(legacyflo_core::Error::backend(
                            "imap",
                            legacyflo_core::ErrorKind::InvalidInput,
                            format!(
                                "UIDVALIDITY of `{folder}` changed ({v} -> {}) and the last migrated message is no longer there; start this folder afresh to copy it again",
                                info.uid_validity
                            ),
                        ));
                    }
                }
            }
        }
        let uids: Vec<u32> = if info.exists == 0 {
            Vec::new()
        } else {
            client
                .uid_search(&search_criteria(filter, start), &raw)
                .await?
                .into_iter()
                .filter(|u| *u >= start)
                .collect()
        };
        info!(message = "streaming folder", folder = %folder, messages = uids.len(), uidvalidity = info.uid_validity);
        let items = if preset::gmail_extensions(self.opts.preset) {
            "(UID FLAGS INTERNALDATE RFC822.SIZE X-GM-LABELS X-GM-MSGID BODY.PEEK[])"
        } else {
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
        };
        let state = FetchState {
            source: self,
            client: Some(client),
            _permit: permit,
            batch: self.opts.limits.fetch_batch.max(1),
            uids,
            idx: 0,
            next_batch: 0,
            tags: HashMap::new(),
            completed: HashSet::new(),
            buffer: HashMap::new(),
            items,
            folder: folder.clone(),
            raw,
            uid_validity: info.uid_validity,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut st| async move { st.next().await.map(|ev| (ev, st)) },
        )))
    }
}

/// The pipelined fetch of one folder. Servers may interleave the answers of pipelined
/// commands (Dovecot runs them concurrently), so answers are buffered and yielded in the
/// order of `uids`; a UID whose batch completed without it was expunged meanwhile.
struct FetchState<'a> {
    source: &'a ImapSource,
    client: Option<ImapClient>,
    _permit: OwnedSemaphorePermit,
    batch: usize,
    uids: Vec<u32>,
    idx: usize,
    next_batch: usize,
    tags: HashMap<String, usize>,
    completed: HashSet<usize>,
    buffer: HashMap<u32, FetchItem>,
    items: &'static str,
    folder: FolderPath,
    raw: String,
    uid_validity: u32,
}

impl FetchState<'_> {
    fn fail(&mut self, e: ImapError) -> Option<Result<SourceEvent>> {
        self.client = None;
        warn!(message = "IMAP stream failed", folder = %self.folder, error = %e);
        let e = match e {
            ImapError::No {
                command,
                mailbox: None,
                code,
                text,
            } => ImapError::No {
                command,
                mailbox: Some(self.folder.to_string()),
                code,
                text,
            },
            other => other,
        };
        Some(Err(e.into()))
    }

    fn event(&self, uid: u32, f: FetchItem) -> (SourceEvent, u64) {
        let body = f.body.unwrap_or_default();
        let size = body.len() as u64;
        let ident = match f.gmail_msgid {
            Some(g) => gmail_identity(g),
            None => message_identity(
                &header_message_id(&body),
                f.internal_date,
                f.size.map(u64::from).unwrap_or(size),
            ),
        };
        let mut flags: Vec<Flag> = f.flags.iter().filter_map(|s| Flag::from_imap(s)).collect();
        flags.sort();
        flags.dedup();
        let message = Message {
            raw: body,
            folder: self.folder.clone(),
            flags,
            internal_date: f.internal_date,
            labels: f.gmail_labels,
            source_id: match f.gmail_msgid {
                Some(g) => format!("{g:x}"),
                None => format!("{}:{uid}", self.uid_validity),
            },
        };
        (
            SourceEvent::Message(SourceItem {
                message,
                position: format!("{}:{uid}:{ident}", self.uid_validity),
            }),
            size,
        )
    }

    async fn next(&mut self) -> Option<Result<SourceEvent>> {
        loop {
            while let Some(&uid) = self.uids.get(self.idx) {
                if let Some(item) = self.buffer.remove(&uid) {
                    self.idx += 1;
                    let (ev, size) = self.event(uid, item);
                    if let Some(wait) = self.source.account(size) {
                        warn!(
                            message = "daily download cap reached; pausing",
                            seconds = wait.as_secs()
                        );
                        tokio::time::sleep(wait).await;
                    }
                    return Some(Ok(ev));
                }
                if self.completed.contains(&(self.idx / self.batch)) {
                    debug!(message = "message expunged during the run", folder = %self.folder, uid);
                    self.idx += 1;
                    continue;
                }
                break;
            }
            if self.idx >= self.uids.len() {
                if let Some(c) = self.client.take() {
                    self.source.checkin(c);
                }
                return None;
            }
            let client = self.client.as_mut()?;
            let depth = self.source.opts.limits.pipeline_depth.max(1);
            let nbatches = self.uids.len().div_ceil(self.batch);
            while self.next_batch < nbatches && self.next_batch < self.idx / self.batch + depth {
                let from = self.next_batch * self.batch;
                let to = (from + self.batch).min(self.uids.len());
                match client
                    .send_uid_fetch(&uid_set(&self.uids[from..to]), self.items)
                    .await
                {
                    Ok(tag) => {
                        self.tags.insert(tag, self.next_batch);
                        self.next_batch += 1;
                    }
                    Err(e) => return self.fail(e),
                }
            }
            let reply = match client.next_reply("UID FETCH").await {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            match reply {
                Reply::Fetch(f) => {
                    // Without a body it is an unsolicited flag update, not our answer.
                    if let Some(uid) = f.uid
                        && f.body.is_some()
                        && uid >= self.uids[self.idx]
                    {
                        self.buffer.insert(uid, f);
                    }
                }
                Reply::Done {
                    tag,
                    status,
                    code_text,
                    text,
                    ..
                } => {
                    if let Some(b) = self.tags.remove(&tag) {
                        self.completed.insert(b);
                    }
                    match status {
                        imap_proto::types::Status::Ok => {}
                        imap_proto::types::Status::No => {
                            return self.fail(ImapError::No {
                                command: "UID FETCH".into(),
                                mailbox: Some(legacyflo_core::codec::mutf7_decode(&self.raw)),
                                code: code_text,
                                text,
                            });
                        }
                        _ => {
                            return self.fail(ImapError::Bad {
                                command: "UID FETCH".into(),
                                mailbox: Some(legacyflo_core::codec::mutf7_decode(&self.raw)),
                                text,
                            });
                        }
                    }
                }
                Reply::Untagged(imap_proto::types::Response::Data {
                    status: imap_proto::types::Status::Bye,
                    information,
                    ..
                }) => {
                    return self.fail(ImapError::Bye {
                        command: format!("UID FETCH in `{}`", self.folder),
                        text: information.map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_new_only_when_the_checkpoint_reaches_uidnext() {
        let st = |v, next, n| {
            Some(MailboxInfo {
                exists: n,
                uid_validity: v,
                uid_next: next,
            })
        };
        let p = |s: &str| s.to_string();
        // Checkpoint at the last UID: nothing new.
        assert!(ImapSource::nothing_new(st(7, 11, 10), Some(&p("7:10:abc"))));
        assert!(ImapSource::nothing_new(st(7, 11, 10), Some(&p("7:12"))));
        // A message at UID 11 or later may exist.
        assert!(!ImapSource::nothing_new(
            st(7, 12, 11),
            Some(&p("7:10:abc"))
        ));
        // Renumbered: the identity search must run.
        assert!(!ImapSource::nothing_new(
            st(8, 11, 10),
            Some(&p("7:10:abc"))
        ));
        // Unknown UIDNEXT, no status, unparsable position: read the folder.
        assert!(!ImapSource::nothing_new(st(7, 0, 10), Some(&p("7:10"))));
        assert!(!ImapSource::nothing_new(None, Some(&p("7:10"))));
        assert!(!ImapSource::nothing_new(st(7, 11, 10), Some(&p("junk"))));
        // From the start: only an empty mailbox is skipped.
        assert!(ImapSource::nothing_new(st(7, 1, 0), None));
        assert!(!ImapSource::nothing_new(st(7, 5, 4), None));
    }

    #[test]
    fn positions_and_criteria() {
        assert_eq!(
            parse_position("7:42:abcd"),
            Some((7, 42, Some("abcd".into())))
        );
        assert_eq!(parse_position("7:42"), Some((7, 42, None)));
        assert_eq!(parse_position("x"), None);
        let f = Filter {
            since: chrono::NaiveDate::from_ymd_opt(2023, 1, 10),
            before: chrono::NaiveDate::from_ymd_opt(2023, 2, 1),
            folder: None,
        };
        assert_eq!(
            search_criteria(&f, 5),
            "UID 5:* SINCE 09-Jan-2023 BEFORE 02-Feb-2023"
        );
        assert_eq!(search_criteria(&Filter::default(), 1), "ALL");
        assert_eq!(
            header_message_id(b"Subject: x\r\nMessage-ID:\r\n <a@b>\r\n\r\nMessage-ID: <no>"),
            "<a@b>"
        );
        assert_eq!(header_message_id(b"Subject: x\n\nMessage-ID: <no>"), "");
    }
}
