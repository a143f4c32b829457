//! The pipelined `UID FETCH` of one folder, with exact accounting.
//!
//! Every UID the `UID SEARCH` listed ends as exactly one event, in UID order:
//! - a message, when its body arrived;
//! - [`SourceEvent::Unreadable`], when the server announced it larger than the per-message
//!   limit (the literal is dropped as it arrives; the refusal is remembered by the source,
//!   so a reconnect does not ask again), or when it did not deliver it: a UID whose
//!   `UID FETCH` completed `OK` without it (or with no body, or `NIL`) is asked again,
//!   once in a set and then on its own, and then looked up with a fresh `UID SEARCH`;
//! - [`SourceEvent::Expunged`], when that search no longer lists it.
//!
//! Answers the folder did not ask for (FETCH for other UIDs, a second copy, garbage) are
//! dropped and counted, never buffered. Answers that arrive out of order are buffered, at
//! most [`BUFFER_BYTES`]; past that the ones not needed next are dropped and fetched again
//! later (missing UIDs are asked for again a few at a time, the next needed first). Each command gets the per-command deadline from the moment it is the oldest
//! still open, so a server that trickles or goes silent is abandoned in bounded time with
//! a `Temporary` error (the engine reconnects and resumes after the last event).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use imap_proto::types::{Response, Status};
use legacyflo_core::{Flag, FolderPath, Message, Result, SourceEvent, SourceItem};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use super::client::{FetchItem, ImapClient, ImapError, Reply, reply_kind, uid_set};
use super::source::{ImapSource, gmail_identity, header_message_id, message_identity};

/// Bytes of out-of-order answers buffered at most.
pub const BUFFER_BYTES: u64 = 256 << 20;

/// Missing UIDs asked for again at once (their answers are buffered whatever their size).
const RECOVER_AT_ONCE: usize = 8;

/// A UID settled without a message.
#[derive(Debug)]
enum Settled {
    Expunged,
    Unreadable(String),
}

pub(super) struct FetchState<'a> {
    pub source: &'a ImapSource,
    pub client: Option<ImapClient>,
    pub _permit: OwnedSemaphorePermit,
    pub batch: usize,
    pub depth: usize,
    /// The listed UIDs, ascending.
    pub uids: Vec<u32>,
    /// The next one to yield.
    pub idx: usize,
    /// The next batch to send.
    pub next_batch: usize,
    /// Open commands: tag → batch.
    pub tags: HashMap<String, usize>,
    /// Since when the oldest open command has been the oldest (its deadline clock).
    pub head_since: Instant,
    /// Batches whose command completed.
    pub completed: HashSet<usize>,
    /// Bodies received and not yet yielded.
    pub buffer: HashMap<u32, FetchItem>,
    pub buffered: u64,
    /// UIDs settled without a message, not yet yielded.
    settled: HashMap<u32, Settled>,
    pub items: &'static str,
    pub folder: FolderPath,
    pub raw: String,
    pub uid_validity: u32,
    /// The error that ended the connection; raised once nothing more can be yielded.
    error: Option<ImapError>,
    /// Asking for missing UIDs again: their answers are kept whatever the buffer holds.
    recovering: bool,
}

impl<'a> FetchState<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        source: &'a ImapSource,
        client: ImapClient,
        permit: OwnedSemaphorePermit,
        uids: Vec<u32>,
        items: &'static str,
        folder: FolderPath,
        raw: String,
        uid_validity: u32,
    ) -> FetchState<'a> {
        let limits = &source.options().limits;
        FetchState {
            source,
            client: Some(client),
            _permit: permit,
            batch: limits.fetch_batch.max(1),
            depth: limits.pipeline_depth.max(1),
            uids,
            idx: 0,
            next_batch: 0,
            tags: HashMap::new(),
            head_since: Instant::now(),
            completed: HashSet::new(),
            buffer: HashMap::new(),
            buffered: 0,
            settled: HashMap::new(),
            items,
            folder,
            raw,
            uid_validity,
            error: None,
            recovering: false,
        }
    }

    fn mailbox(&self) -> String {
        legacyflo_core::codec::mutf7_decode(&self.raw)
    }

    /// Keeps `e` to raise once nothing buffered can be yielded; the connection is gone.
    fn broke(&mut self, e: ImapError) {
        if let Some(c) = self.client.take()
            && c.dropped() > 0
        {
            warn!(message = "responses nobody asked for were dropped", folder = %self.folder, count = c.dropped());
        }
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
        self.error = Some(e);
    }

    fn source_id(&self, uid: u32) -> String {
        format!("{}:{uid}", self.uid_validity)
    }

    fn message(&self, uid: u32, f: FetchItem) -> (SourceEvent, u64) {
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
                None => self.source_id(uid),
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

    /// The event for the UID at `idx`, if it is known now.
    fn ready(&mut self) -> Option<(SourceEvent, u64)> {
        let uid = *self.uids.get(self.idx)?;
        let position = format!("{}:{uid}", self.uid_validity);
        if let Some(item) = self.buffer.remove(&uid) {
            self.buffered = self
                .buffered
                .saturating_sub(item.body.as_ref().map_or(0, |b| b.len() as u64));
            self.idx += 1;
            return Some(self.message(uid, item));
        }
        let settled = self.settled.remove(&uid).or_else(|| {
            self.source
                .refusal(&self.raw, self.uid_validity, uid)
                .map(Settled::Unreadable)
        })?;
        self.idx += 1;
        let ev = match settled {
            Settled::Expunged => {
                debug!(message = "message expunged during the run", folder = %self.folder, uid);
                SourceEvent::Expunged {
                    source_id: self.source_id(uid),
                    position,
                }
            }
            Settled::Unreadable(reason) => SourceEvent::Unreadable {
                source_id: self.source_id(uid),
                position,
                reason,
            },
        };
        Some((ev, 0))
    }

    /// Whether `uid` is one this folder asked for and still waits for.
    fn wanted(&self, uid: u32) -> bool {
        match self.uids.binary_search(&uid) {
            Ok(p) => {
                p >= self.idx
                    && p / self.batch < self.next_batch
                    && !self.buffer.contains_key(&uid)
                    && !self.settled.contains_key(&uid)
            }
            Err(_) => false,
        }
    }

    /// Whether the UID at `idx` is missing from a batch that completed.
    fn head_missing(&self) -> bool {
        self.idx < self.uids.len() && self.completed.contains(&(self.idx / self.batch))
    }

    pub(super) async fn next(&mut self) -> Option<Result<SourceEvent>> {
        loop {
            if let Some((ev, size)) = self.ready() {
                if let Some(wait) = self.source.account(size) {
                    warn!(
                        message = "daily download cap reached; pausing",
                        seconds = wait.as_secs()
                    );
                    tokio::time::sleep(wait).await;
                }
                return Some(Ok(ev));
            }
            if self.idx >= self.uids.len() {
                if let Some(c) = self.client.take() {
                    if c.dropped() > 0 {
                        warn!(message = "responses nobody asked for were dropped", folder = %self.folder, count = c.dropped());
                    }
                    self.source.checkin(c);
                }
                return None;
            }
            if let Some(e) = self.error.take() {
                return Some(Err(e.into()));
            }
            let step = if self.head_missing() {
                self.recover().await
            } else {
                self.pump().await
            };
            if let Err(e) = step {
                self.broke(e);
            }
        }
    }

    /// Sends batches up to the pipeline depth and takes one answer.
    async fn pump(&mut self) -> std::result::Result<(), ImapError> {
        let nbatches = self.uids.len().div_ceil(self.batch);
        while self.next_batch < nbatches && self.next_batch < self.idx / self.batch + self.depth {
            let from = self.next_batch * self.batch;
            let to = (from + self.batch).min(self.uids.len());
            let ask: Vec<u32> = self.uids[from..to]
                .iter()
                .copied()
                .filter(|u| {
                    self.source
                        .refusal(&self.raw, self.uid_validity, *u)
                        .is_none()
                })
                .collect();
            let b = self.next_batch;
            self.next_batch += 1;
            if ask.is_empty() {
                self.completed.insert(b);
                continue;
            }
            let items = self.items;
            let client = self.connection()?;
            let tag = client.send_uid_fetch(&uid_set(&ask), items).await?;
            if self.tags.is_empty() {
                self.head_since = Instant::now();
            }
            self.tags.insert(tag, b);
        }
        if self.tags.is_empty() {
            // Everything sent completed; `next` settles what is missing.
            return Ok(());
        }
        let since = self.head_since;
        let client = self.connection()?;
        let deadline = since + client.command_timeout();
        let reply = client.next_reply("UID FETCH", deadline).await?;
        self.take(reply, None)
    }

    fn connection(&mut self) -> std::result::Result<&mut ImapClient, ImapError> {
        self.client.as_mut().ok_or_else(|| ImapError::Closed {
            command: "UID FETCH".into(),
        })
    }

    /// Takes one answer: a wanted body is buffered, an oversized one refused; `on_behalf`
    /// is the UID a single-UID command asked for (an oversized answer without its UID is
    /// that one's).
    fn take(&mut self, reply: Reply, on_behalf: Option<u32>) -> std::result::Result<(), ImapError> {
        match reply {
            Reply::Fetch(f) => match f.uid {
                Some(uid) if f.body.is_some() && self.wanted(uid) => {
                    let len = f.body.as_ref().map_or(0, |b| b.len() as u64);
                    let head = self.uids.get(self.idx) == Some(&uid);
                    if !head && !self.recovering && self.buffered.saturating_add(len) > BUFFER_BYTES
                    {
                        debug!(message = "out-of-order answer over the buffer bound; fetched again later", folder = %self.folder, uid);
                    } else {
                        self.buffered += len;
                        self.buffer.insert(uid, f);
                    }
                }
                // A flag update (no body), a second copy, a UID nobody asked for.
                _ => self.dropped(&Reply::Fetch(f)),
            },
            Reply::Oversized {
                uid,
                announced,
                limit,
                ..
            } => match uid.or(on_behalf) {
                Some(uid) if self.wanted(uid) => {
                    let reason = format!(
                        "UID {uid} in `{}`: the server announced a message of {announced} bytes, over the limit of {limit} bytes; it was not read",
                        self.mailbox()
                    );
                    warn!(message = "message over the size limit skipped", folder = %self.folder, uid, announced, limit);
                    self.source
                        .refuse(&self.raw, self.uid_validity, uid, reason);
                }
                _ => self.dropped(&Reply::Oversized {
                    seq: None,
                    uid,
                    announced,
                    limit,
                }),
            },
            Reply::Done {
                tag,
                status,
                code_text,
                text,
                ..
            } => {
                match self.tags.remove(&tag) {
                    Some(b) => {
                        self.completed.insert(b);
                        self.head_since = Instant::now();
                    }
                    None => {
                        debug!(message = "completion for an unknown tag", tag = %tag);
                        return Ok(());
                    }
                }
                return self.status(status, code_text, text);
            }
            Reply::Untagged(Response::Data {
                status: Status::Bye,
                information,
                ..
            }) => {
                return Err(ImapError::Bye {
                    command: format!("UID FETCH in `{}`", self.folder),
                    text: information.map(|s| s.to_string()).unwrap_or_default(),
                });
            }
            other => self.dropped(&other),
        }
        Ok(())
    }

    fn dropped(&mut self, r: &Reply) {
        if let Some(c) = self.client.as_mut() {
            c.note_dropped("UID FETCH", reply_kind(r));
        }
    }

    fn status(
        &self,
        status: Status,
        code_text: Option<String>,
        text: String,
    ) -> std::result::Result<(), ImapError> {
        match status {
            Status::Ok => Ok(()),
            Status::No => Err(ImapError::No {
                command: "UID FETCH".into(),
                mailbox: Some(self.mailbox()),
                code: code_text,
                text,
            }),
            _ => Err(ImapError::Bad {
                command: "UID FETCH".into(),
                mailbox: Some(self.mailbox()),
                text,
            }),
        }
    }

    /// The UIDs from `idx` on that completed without arriving.
    fn missing(&self) -> Vec<u32> {
        self.uids[self.idx..]
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                self.completed.contains(&((self.idx + i) / self.batch))
                    && !self.buffer.contains_key(u)
                    && !self.settled.contains_key(u)
                    && self
                        .source
                        .refusal(&self.raw, self.uid_validity, **u)
                        .is_none()
            })
            .map(|(_, u)| *u)
            .collect()
    }

    /// Settles the UIDs that completed without arriving: waits for the open commands,
    /// asks for the missing ones again (in one set, then one by one), then looks the rest
    /// up with `UID SEARCH`: gone is expunged, still there is unreadable.
    async fn recover(&mut self) -> std::result::Result<(), ImapError> {
        while !self.tags.is_empty() {
            let since = self.head_since;
            let client = self.connection()?;
            let deadline = since + client.command_timeout();
            let reply = client.next_reply("UID FETCH", deadline).await?;
            self.take(reply, None)?;
        }
        let asked: Vec<u32> = self.missing().into_iter().take(RECOVER_AT_ONCE).collect();
        if asked.is_empty() {
            return Ok(());
        }
        debug!(message = "UID FETCH completed without some messages; asking again", folder = %self.folder, uids = %uid_set(&asked));
        self.recovering = true;
        let r = self.ask_again(&asked).await;
        self.recovering = false;
        r?;
        let still = |st: &Self| -> Vec<u32> {
            asked
                .iter()
                .copied()
                .filter(|u| {
                    !st.buffer.contains_key(u)
                        && !st.settled.contains_key(u)
                        && st.source.refusal(&st.raw, st.uid_validity, *u).is_none()
                })
                .collect()
        };
        let missing = still(self);
        if missing.is_empty() {
            return Ok(());
        }
        let raw = self.raw.clone();
        let client = self.connection()?;
        let present: HashSet<u32> = client
            .uid_search(&format!("UID {}", uid_set(&missing)), &raw)
            .await?
            .into_iter()
            .collect();
        let mailbox = self.mailbox();
        for uid in missing {
            let s = if present.contains(&uid) {
                warn!(message = "message listed but never delivered", folder = %self.folder, uid);
                Settled::Unreadable(format!(
                    "UID {uid} in `{mailbox}`: UID FETCH was answered OK three times without this message (missing, without a body, or unparsable), and UID SEARCH still lists it"
                ))
            } else {
                Settled::Expunged
            };
            self.settled.insert(uid, s);
        }
        Ok(())
    }

    /// Asks for `uids` again: in one set, then the ones still missing one by one.
    async fn ask_again(&mut self, uids: &[u32]) -> std::result::Result<(), ImapError> {
        self.fetch_again(&uid_set(uids), None).await?;
        for &uid in uids {
            if self.wanted(uid)
                && self
                    .source
                    .refusal(&self.raw, self.uid_validity, uid)
                    .is_none()
            {
                self.fetch_again(&uid.to_string(), Some(uid)).await?;
            }
        }
        Ok(())
    }

    /// One `UID FETCH set`, read to its completion.
    async fn fetch_again(
        &mut self,
        set: &str,
        on_behalf: Option<u32>,
    ) -> std::result::Result<(), ImapError> {
        let items = self.items;
        let client = self.connection()?;
        let tag = client.send_uid_fetch(set, items).await?;
        let deadline = client.deadline();
        loop {
            let client = self.connection()?;
            match client.next_reply("UID FETCH", deadline).await? {
                Reply::Done {
                    tag: t,
                    status,
                    code_text,
                    text,
                    ..
                } if t == tag => return self.status(status, code_text, text),
                other => self.take(other, on_behalf)?,
            }
        }
    }
}
