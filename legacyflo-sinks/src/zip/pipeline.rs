//! The part of the ZIP sinks that does not depend on where the archive goes: entry names
//! and ordinals, duplicate detection, entry comments, and the parallel compression of
//! entries (on the compression threads of [`super::compress`]), appended in write order
//! to an [`EntryArchive`] (a local file, or a multipart upload to S3).

use std::collections::{HashMap, HashSet, VecDeque};

use async_trait::async_trait;
use legacyflo_core::codec::EntryMeta;
use legacyflo_core::{Flag, FolderPath, Message, WriteOutcome};
use tracing::warn;

use super::format::Entry;
use super::sink::entry_name;
use crate::error::{SinkError, SinkResult};
use crate::util::message_key;

/// Longest entry comment written (the format allows 65,535 bytes).
const MAX_COMMENT: usize = 60_000;

/// Where compressed entries go: keeps the names, identities and counters of what it
/// holds, and commits and rolls back as the [`Sink`](legacyflo_core::Sink) contract asks.
#[async_trait]
pub(crate) trait EntryArchive: Send {
    /// The backend name for errors.
    fn backend(&self) -> &'static str;
    /// The identities of the stored messages (committed or not).
    fn keys(&self) -> &HashSet<u128>;
    /// The last ordinal used per folder.
    fn ordinals(&mut self) -> &mut HashMap<FolderPath, u64>;
    /// Whether a message with identity `key` is stored (committed or not).
    fn has_key(&self, key: u128) -> bool {
        self.keys().contains(&key)
    }
    /// The last ordinal used in `folder`.
    fn ordinal(&mut self, folder: &FolderPath) -> u64 {
        self.ordinals().get(folder).copied().unwrap_or(0)
    }
    /// Records `ordinal` as used in `folder` (keeps the largest).
    fn use_ordinal(&mut self, folder: &FolderPath, ordinal: u64) {
        let current = self.ordinal(folder);
        self.ordinals().insert(folder.clone(), current.max(ordinal));
    }
    /// Whether a failed write or commit left it needing a rollback.
    fn is_broken(&self) -> bool;
    /// Marks it as needing a rollback.
    fn set_broken(&mut self);
    /// Appends one entry for `message` with identity `key`.
    async fn append(&mut self, message: &Message, key: u128, entry: Entry) -> SinkResult<()>;
}

/// A message whose entry is being compressed.
#[derive(Debug)]
struct Pending {
    message: Message,
    key: u128,
    ordinal: u64,
    task: tokio::sync::oneshot::Receiver<std::io::Result<Entry>>,
}

/// What a write decided before compressing.
enum Prepared {
    Done(WriteOutcome),
    Go {
        name: String,
        comment: String,
        key: u128,
        ordinal: u64,
    },
}

/// Entries being compressed, appended in write order.
#[derive(Debug)]
pub(crate) struct Pipeline {
    inflight: VecDeque<Pending>,
    /// Identities of the in-flight messages (for duplicate detection).
    inflight_keys: HashSet<u128>,
    /// Last ordinal handed out per folder while entries are in flight.
    next_ordinals: HashMap<FolderPath, u64>,
    /// Entries compressed at once.
    max_inflight: usize,
    /// Raw bytes of the in-flight messages.
    inflight_bytes: u64,
}

/// Raw bytes of messages compressed at once beyond the first one: with large messages the
/// pipeline holds fewer, so memory stays bounded (each holds its bytes and its entry).
const MAX_INFLIGHT_BYTES: u64 = 16 << 20;

impl Default for Pipeline {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Pipeline {
            inflight: VecDeque::new(),
            inflight_keys: HashSet::new(),
            next_ordinals: HashMap::new(),
            max_inflight: (2 * cores).max(2),
            inflight_bytes: 0,
        }
    }
}

impl Pipeline {
    /// Decides what to do with `message`: duplicate, rejected, or its entry name and
    /// metadata. Names and ordinals are fixed here, in write order.
    fn prepare(&self, archive: &mut dyn EntryArchive, message: &Message) -> SinkResult<Prepared> {
        if archive.is_broken() {
            return Err(SinkError::misuse(
                archive.backend(),
                "an earlier write failed; abort first",
            ));
        }
        let key = message_key(message);
        if archive.has_key(key) || self.inflight_keys.contains(&key) {
            return Ok(Prepared::Done(WriteOutcome::Duplicate));
        }
        let ordinal = archive.ordinal(&message.folder).max(
            self.next_ordinals
                .get(&message.folder)
                .copied()
                .unwrap_or(0),
        ) + 1;
        let name = entry_name(&message.folder, ordinal);
        if name.len() > usize::from(u16::MAX) - 64 {
            return Ok(Prepared::Done(WriteOutcome::Rejected {
                reason: format!(
                    "the folder name is too long for a ZIP entry ({} bytes)",
                    name.len()
                ),
            }));
        }
        let mut meta = EntryMeta {
            date: message.internal_date,
            flags: message.flags.clone(),
            key: Some(format!("{key:032x}")),
        };
        let mut comment = meta.to_comment();
        if comment.len() > MAX_COMMENT {
            warn!(message = "too many keywords for the entry comment; keywords dropped", folder = %message.folder, source_id = %message.source_id);
            meta.flags.retain(|f| !matches!(f, Flag::Keyword(_)));
            comment = meta.to_comment();
        }
        Ok(Prepared::Go {
            name,
            comment,
            key,
            ordinal,
        })
    }

    /// Writes one message: starts compressing its entry and appends the oldest entries
    /// while too many are in flight.
    pub(crate) async fn write<A: EntryArchive>(
        &mut self,
        archive: &mut A,
        message: &Message,
    ) -> SinkResult<WriteOutcome> {
        let (name, comment, key, ordinal) = match self.prepare(archive, message)? {
            Prepared::Done(outcome) => return Ok(outcome),
            Prepared::Go {
                name,
                comment,
                key,
                ordinal,
            } => (name, comment, key, ordinal),
        };
        let raw = message.raw.clone();
        let date = message.internal_date;
        let entry_name = name.clone();
        let task = super::compress::spawn(move || Entry::new(entry_name, comment, &raw, date));
        self.inflight.push_back(Pending {
            message: message.clone(),
            key,
            ordinal,
            task,
        });
        self.inflight_keys.insert(key);
        self.inflight_bytes += message.raw.len() as u64;
        self.next_ordinals.insert(message.folder.clone(), ordinal);
        while self.inflight.len() > self.max_inflight
            || (self.inflight.len() > 1 && self.inflight_bytes > MAX_INFLIGHT_BYTES)
        {
            self.drain_one(archive).await?;
        }
        Ok(WriteOutcome::Written { id: Some(name) })
    }

    /// Waits for the oldest in-flight entry and appends it to the archive.
    async fn drain_one<A: EntryArchive>(&mut self, archive: &mut A) -> SinkResult<bool> {
        let Some(p) = self.inflight.pop_front() else {
            return Ok(false);
        };
        self.inflight_keys.remove(&p.key);
        self.inflight_bytes = self
            .inflight_bytes
            .saturating_sub(p.message.raw.len() as u64);
        let entry = match p.task.await {
            Ok(Ok(entry)) => entry,
            Ok(Err(e)) => {
                archive.set_broken();
                return Err(SinkError::io(archive.backend(), "compress", e));
            }
            Err(_) => {
                archive.set_broken();
                return Err(SinkError::misuse(
                    archive.backend(),
                    "compression task failed",
                ));
            }
        };
        if let Err(e) = archive.append(&p.message, p.key, entry).await {
            archive.set_broken();
            return Err(e);
        }
        archive.use_ordinal(&p.message.folder, p.ordinal);
        Ok(true)
    }

    /// Appends every in-flight entry.
    pub(crate) async fn drain_all<A: EntryArchive>(&mut self, archive: &mut A) -> SinkResult<()> {
        while self.drain_one(archive).await? {}
        self.next_ordinals.clear();
        Ok(())
    }

    /// Drops the entries still compressing (they belong to discarded writes; those not
    /// started yet are skipped).
    pub(crate) fn forget(&mut self) {
        self.inflight.clear();
        self.inflight_keys.clear();
        self.inflight_bytes = 0;
        self.next_ordinals.clear();
    }
}
