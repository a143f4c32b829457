//! The [`Source`] trait: where messages come from.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::filter::Filter;
use crate::message::{FolderPath, Message};

/// A folder as a source lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderInfo {
    /// Its path.
    pub path: FolderPath,
    /// Whether it can hold messages (IMAP `\Noselect` folders cannot).
    pub selectable: bool,
    /// Its message count, when the source knows it cheaply.
    pub messages: Option<u64>,
    /// RFC 6154 special use (`\Sent`, `\Trash`, …), if any.
    pub special_use: Option<String>,
    /// What the source noticed about this folder while listing and wants in the report
    /// (e.g. "the server lists two mailboxes that decode to this name; this one is kept
    /// apart as `Foo (2)`"). Copied into the folder's report on a fresh run.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Entries that belong under this folder but were skipped while listing (a symbolic
    /// link out of the source root, a file that vanished), each with its reason. The
    /// engine counts them as skipped messages of this folder, so the run ends
    /// "done with skipped messages" (exit 3) and nothing is left out silently.
    #[serde(default)]
    pub skipped: Vec<crate::engine::report::Failure>,
}

impl FolderInfo {
    /// A selectable folder with no count or special use.
    pub fn new(path: FolderPath) -> Self {
        FolderInfo {
            path,
            selectable: true,
            messages: None,
            special_use: None,
            notes: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

/// An opaque position inside a folder, defined by the source (an mbox byte offset, an IMAP
/// `UIDVALIDITY:UID`, a page token). Checkpoints store it; [`Source::stream`] resumes after it.
pub type Position = String;

/// One message read from a source, with the position just after it.
#[derive(Clone, Debug)]
pub struct SourceItem {
    /// The message.
    pub message: Message,
    /// Resuming after this position yields the messages that follow this one.
    pub position: Position,
}

/// What a source stream yields.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    /// A message.
    Message(SourceItem),
    /// A message that could not be read at all; it is reported with the reason and the
    /// stream goes on. (Malformed but readable mail is a [`SourceEvent::Message`]: the
    /// bytes are archived as they are.)
    Unreadable {
        /// The source's id for the message.
        source_id: String,
        /// Resuming after this position skips it.
        position: Position,
        /// Why it could not be read.
        reason: String,
    },
    /// A message the source listed but that is no longer there: it was deleted at the
    /// source during the run, and the source checked that (IMAP: absent from a fresh
    /// `UID SEARCH`; an API answering 404 for an id it listed). It is counted as expunged,
    /// not as skipped: nothing the mailbox still holds was left out. A source MUST NOT
    /// use this for a message it merely failed to read (that is
    /// [`SourceEvent::Unreadable`]).
    Expunged {
        /// The source's id for the message.
        source_id: String,
        /// Resuming after this position skips it.
        position: Position,
    },
}

impl SourceEvent {
    /// The position after this event.
    pub fn position(&self) -> &Position {
        match self {
            SourceEvent::Message(item) => &item.position,
            SourceEvent::Unreadable { position, .. } => position,
            SourceEvent::Expunged { position, .. } => position,
        }
    }
}

/// The stream of one folder's messages.
pub type MessageStream<'a> = Pin<Box<dyn Stream<Item = Result<SourceEvent>> + Send + 'a>>;

/// What a source can do, so the engine knows what it must do itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceCapabilities {
    /// The source applies [`Filter`] dates itself (the engine still re-checks).
    pub filters_dates: bool,
    /// Several folders may be streamed at once.
    pub concurrent_folders: bool,
}

/// A mailbox to read: files, an IMAP account, an API.
///
/// # Contract
/// - [`list_folders`](Source::list_folders) MUST return every folder of the mailbox that
///   this source migrates (provider presets exclude theirs, such as Gmail labels other than
///   All Mail), each once. Folder filtering by the request is done by the engine.
/// - [`stream`](Source::stream) MUST yield a folder's messages in an order that is the same
///   on every run against unchanged data, each message once. With `after = Some(p)` it MUST
///   yield exactly the messages that followed the one whose position was `p`: no gap, no
///   repeat. Positions are opaque to callers and only meaningful for the same folder.
/// - The source MAY apply the filter's dates itself and report so in
///   [`capabilities`](Source::capabilities); it MUST NOT drop a message for any other reason.
///   A message it cannot read is yielded as [`SourceEvent::Unreadable`] with a reason; a
///   message it listed and then found deleted at the source is yielded as
///   [`SourceEvent::Expunged`]. Every message a source lists before reading is accounted
///   for by exactly one event.
/// - After a stream yields `Err`, it yields nothing more. If the error is retryable
///   ([`crate::Error::is_retryable`]) the caller may call `stream` again with the last
///   position it received.
/// - Sources never modify the mailbox (IMAP uses `BODY.PEEK`, files are opened read-only).
#[async_trait]
pub trait Source: Send + Sync {
    /// A short name for logs and reports, e.g. `mbox`, `imap`.
    fn kind(&self) -> &str;

    /// What the source can do.
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::default()
    }

    /// Lists the folders to migrate.
    async fn list_folders(&self) -> Result<Vec<FolderInfo>>;

    /// Streams `folder`'s messages after `after` (from the start when `None`).
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>>;
}

#[async_trait]
impl<S: Source + ?Sized> Source for Box<S> {
    fn kind(&self) -> &str {
        (**self).kind()
    }
    fn capabilities(&self) -> SourceCapabilities {
        (**self).capabilities()
    }
    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        (**self).list_folders().await
    }
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        (**self).stream(folder, filter, after).await
    }
}

#[async_trait]
impl<S: Source + ?Sized> Source for std::sync::Arc<S> {
    fn kind(&self) -> &str {
        (**self).kind()
    }
    fn capabilities(&self) -> SourceCapabilities {
        (**self).capabilities()
    }
    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        (**self).list_folders().await
    }
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        (**self).stream(folder, filter, after).await
    }
}
