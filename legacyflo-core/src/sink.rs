//! The [`Sink`] trait: where messages go.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::message::{FolderPath, Message};

/// State a sink needs to resume after a crash, saved by the engine together with the
/// source checkpoints in one atomic write. Its content is defined by the sink.
pub type SinkState = serde_json::Value;

/// The result of [`Sink::write`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOutcome {
    /// Accepted; durable after the next [`Sink::commit`]. `id` is where it went when the
    /// sink knows (a ZIP entry name, an IMAP `APPENDUID`).
    Written {
        /// The sink's id for the stored message.
        id: Option<String>,
    },
    /// The sink already holds this message (same folder and source id, or the sink's own
    /// identity rule); nothing was written.
    Duplicate,
    /// The sink cannot store this message; it is reported with the reason, the run goes on.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// Where one stored message went: the sink's id for it (an IMAP `APPENDUID` as
/// `UIDVALIDITY:UID`, a Maildir file name, …), listed in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The message's folder (as the sink was given it).
    pub folder: FolderPath,
    /// The source's id for the message.
    pub source_id: String,
    /// The sink's id for the stored message.
    pub id: String,
}

/// What a sink learned after [`Sink::write`] had answered `Written { id: None }` (a
/// buffered message sent later in a batch, a PST built at finish), handed over by
/// [`Sink::settled`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settled {
    /// It is stored, with this id.
    Stored(Placement),
    /// The destination refused it after all: it is not stored.
    Refused {
        /// The message's folder.
        folder: FolderPath,
        /// The source's id for the message.
        source_id: String,
        /// Its size in bytes ([`Message::size`]), as `write` counted it.
        bytes: u64,
        /// Why.
        reason: String,
    },
}

/// What a file output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// A data file: ZIP, PST, mbox.
    Archive,
    /// The content-list CSV beside a data file.
    ContentList,
    /// A directory tree (Maildir) or a mailbox on a server.
    Mailbox,
}

/// A finished output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Where it is: a path, an `s3://` URL, `imap://user@host/folder`.
    pub location: String,
    /// What it is.
    pub kind: OutputKind,
    /// Its size in bytes, when it is a file.
    pub bytes: Option<u64>,
    /// Messages in it.
    pub messages: u64,
}

/// A destination: an archive file, a directory tree, a vault.
///
/// # Contract
/// - The engine calls [`open`](Sink::open) once, first. With `Some(state)` (a state returned
///   by an earlier [`commit`](Sink::commit) of a run of the same request) the sink MUST
///   restore its output to exactly what that commit made durable, discarding anything
///   written after it, or, where it cannot discard (a server that already stored a
///   message), MUST recognise re-delivered messages and answer [`WriteOutcome::Duplicate`].
/// - [`begin_folder`](Sink::begin_folder) is called before a folder's first write, and
///   again after an [`abort`](Sink::abort); it MUST be idempotent (a folder that exists is
///   fine). Writes of different folders may interleave.
/// - [`write`](Sink::write) stores one message. Its bytes MUST be kept exactly unless the
///   format cannot hold them (PST keeps properties, not bytes). A message the sink cannot
///   store gives `Ok(Rejected)`; `Err` means the sink is in trouble and the engine will
///   [`abort`](Sink::abort) and rewind to the last commit (retryable errors) or stop.
///   Writing the same (folder, source id) twice in a run MUST NOT store it twice.
/// - [`commit`](Sink::commit) makes everything written so far durable (flushed and synced
///   to disk, uploaded and acknowledged) and returns the state to resume from. Only after
///   it returns does the engine advance the sources' checkpoints.
/// - [`abort`](Sink::abort) discards what was written since the last commit; afterwards
///   nothing of it is visible, and the sink can be written again.
/// - [`finish`](Sink::finish) commits, completes the outputs (closes archives, renames
///   partial files to their final names, writes content lists) and lists them. After it no
///   other method is called. Calling it on a sink restored from the state of a finished
///   run (a process killed between `finish` and the checkpoint after it) returns the same
///   outputs; `commit` on such a sink, which the engine calls before every `finish`,
///   changes nothing and returns that state.
/// - After an `Err` from `commit` or `finish`, only `abort` may be called.
/// - After each successful [`commit`](Sink::commit) and after a successful
///   [`finish`](Sink::finish) the engine calls [`settled`](Sink::settled): a sink that
///   answered `Written { id: None }` and learned more later (a batch sent at commit, a PST
///   built at finish) returns, once each, the id of every such message it now knows and
///   every such message the destination refused after all. Nothing that an `abort`
///   discarded may be returned.
#[async_trait]
pub trait Sink: Send {
    /// A short name for logs and reports, e.g. `zip`, `maildir`.
    fn kind(&self) -> &str;

    /// Prepares the output, restoring `resume` when given.
    async fn open(&mut self, resume: Option<SinkState>) -> Result<()>;

    /// Announces the folder of the next writes.
    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()>;

    /// Writes one message.
    async fn write(&mut self, message: &Message) -> Result<WriteOutcome>;

    /// Makes the writes durable and returns the state to resume from.
    async fn commit(&mut self) -> Result<SinkState>;

    /// Discards the writes since the last commit.
    async fn abort(&mut self) -> Result<()>;

    /// Completes the outputs and lists them.
    async fn finish(&mut self) -> Result<Vec<Output>>;

    /// Ids learned, and refusals met, since the last call for messages `write` accepted
    /// without an id (see the contract). The default: nothing.
    fn settled(&mut self) -> Vec<Settled> {
        Vec::new()
    }
}

#[async_trait]
impl<S: Sink + ?Sized> Sink for Box<S> {
    fn kind(&self) -> &str {
        (**self).kind()
    }
    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        (**self).open(resume).await
    }
    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        (**self).begin_folder(folder).await
    }
    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        (**self).write(message).await
    }
    async fn commit(&mut self) -> Result<SinkState> {
        (**self).commit().await
    }
    async fn abort(&mut self) -> Result<()> {
        (**self).abort().await
    }
    async fn finish(&mut self) -> Result<Vec<Output>> {
        (**self).finish().await
    }
    fn settled(&mut self) -> Vec<Settled> {
        (**self).settled()
    }
}
