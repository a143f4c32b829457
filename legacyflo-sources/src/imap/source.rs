//! [`ImapSource`]: reads an IMAP account, folder by folder, with pipelined `UID FETCH`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Days, Utc};
use legacyflo_core::{
    Filter, FolderInfo, FolderPath, MessageStream, Position, Result, Source, SourceCapabilities,
};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use super::client::{ConnectOptions, ImapClient, MailboxInfo};
use super::fetch::FetchState;
use super::folders::{self, Listed};
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
///   (see [`preset::keeps`]). `\Noselect` folders are listed as not selectable. Every
///   mailbox listed is read: names that read the same once decoded (`abs`, `/abs`;
///   `x/y`, `x//y`; `Foo` and a modified UTF-7 spelling of it) are kept apart with a stable
///   suffix and a note in the report (see the `folders` module).
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
/// - Accounting: every listed UID ends as a message, a skipped message with its UID and
///   reason (over [`FrameLimits`](super::client::FrameLimits)' size limit, or still listed
///   after being asked for three times without arriving), or an expunged one (no longer
///   listed by a fresh `UID SEARCH`); see the `fetch` module.
/// - Bounds: the limits of [`ConnectOptions`] (line length, message size, per-command
///   deadline) apply to every exchange; responses nobody asked for are dropped.
/// - A dropped connection or a missed deadline fails the stream with a `Temporary` error
///   and no retry here: the engine calls [`stream`](Source::stream) again with the last
///   position (its retry policy is the only one) and a new connection is made.
/// - Connections are pooled and limited to `limits.max_connections`.
pub struct ImapSource {
    opts: ImapSourceOptions,
    pool: Mutex<Vec<ImapClient>>,
    permits: Arc<Semaphore>,
    names: tokio::sync::Mutex<Option<HashMap<FolderPath, Listed>>>,
    budget: preset::Budget,
    /// Messages refused for their announced size, by (mailbox, UIDVALIDITY, UID): not
    /// asked for again after a reconnect, reported with the reason at their turn.
    refused: Mutex<HashMap<(String, u32, u32), String>>,
}

impl std::fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSource")
            .field("server", &self.opts.connect.host)
            .field("preset", &self.opts.preset)
            .finish()
    }
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
pub(super) fn gmail_identity(msgid: u64) -> String {
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
            refused: Mutex::new(HashMap::new()),
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

    /// Why the message `uid` of `mailbox` was refused, if it was.
    pub(super) fn refusal(&self, mailbox: &str, uid_validity: u32, uid: u32) -> Option<String> {
        let r = self.refused.lock().ok()?;
        if r.is_empty() {
            return None;
        }
        r.get(&(mailbox.to_string(), uid_validity, uid)).cloned()
    }

    /// Remembers that the message `uid` of `mailbox` is refused, and why.
    pub(super) fn refuse(&self, mailbox: &str, uid_validity: u32, uid: u32, reason: String) {
        if let Ok(mut r) = self.refused.lock() {
            r.insert((mailbox.to_string(), uid_validity, uid), reason);
        }
    }

    pub(super) fn checkin(&self, client: ImapClient) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(client);
        }
    }

    /// Counts downloaded bytes against the daily cap; returns how long to pause.
    pub(super) fn account(&self, bytes: u64) -> Option<std::time::Duration> {
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
        Ok(folders::folders(
            entries,
            self.opts.preset,
            self.opts.root.as_deref(),
        ))
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
        let mut found: Option<u32> = None;
        client
            .uid_fetch_each("1:*", items, raw, &mut |f| {
                let Some(uid) = f.uid else {
                    return;
                };
                let mid = header_message_id(f.body.as_deref().unwrap_or_default());
                let id = match f.gmail_msgid {
                    Some(g) => gmail_identity(g),
                    None => message_identity(&mid, f.internal_date, u64::from(f.size.unwrap_or(0))),
                };
                if id == ident && found.is_none_or(|u| uid < u) {
                    found = Some(uid);
                }
            })
            .await?;
        Ok(found)
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
        let state = FetchState::new(
            self,
            client,
            permit,
            uids,
            items,
            folder.clone(),
            raw,
            info.uid_validity,
        );
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut st| async move { st.next().await.map(|ev| (ev, st)) },
        )))
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
