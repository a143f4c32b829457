//! The PST source: an Outlook data file (`.pst`, Unicode or ANSI), read with
//! [`legacyflo_pst::PstReader`].
//!
//! # Folders
//! The folders are those below the IPM subtree ("Top of Personal Folders"), in the
//! reader's order (parents before children), their path segments exactly as the file
//! names them (a `/` inside a name stays inside its segment). Outlook's hidden folders
//! outside the IPM subtree (search root, "Freebusy Data") are not migrated. Messages held
//! by the IPM subtree folder itself (some files have them) are listed as `INBOX`, the
//! convention of the other file sources for messages at a mailbox's root; they come before
//! the messages of a folder actually named `INBOX`, if there is one. Two sibling
//! folders with the same name (a PST allows it) are listed once; their messages are
//! streamed one folder after the other.
//!
//! # Messages
//! Every item of a folder's contents table is yielded, whatever its message class (mail,
//! posts, and also appointments or contacts Outlook put into a mail folder): the source
//! never drops an item. Its bytes are the RFC 5322 message the reader rebuilds from the
//! stored properties (transport headers, bodies, attachments, embedded messages), so they
//! are not the bytes that were once imported: a PST keeps properties, not bytes.
//! - `source_id` is the message's node id (decimal), stable within one file;
//! - flags: the read flag (`MSGFLAG_READ`) gives [`Flag::Seen`](legacyflo_core::Flag::Seen);
//!   no other flag is restored;
//! - the internal date is the stored delivery time (`PidTagMessageDeliveryTime`), if any.
//!
//! An item the reader cannot rebuild (a block or page that fails its CRC, signature, id
//! or size check, a missing node) is yielded as
//! [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable) with the reader's
//! error as the reason (naming the damaged block or page, its offset and the check that
//! failed, e.g. the stored and computed CRCs); its `source_id` is its node id, as for a
//! message read. The other messages are read as usual.
//!
//! # Damaged files
//! A file whose header or B-tree root page is damaged is refused with an error naming
//! the damage. A folder whose contents table is damaged still yields its messages: the
//! message nodes the node B-tree gives it as parent, in node order; the folder's report
//! notes it, and counts as skipped the messages the folder says it holds but that were not
//! found (or one, when the node B-tree is damaged too and some may be missing). A damaged
//! hierarchy table is bridged the same way for subfolders.
//!
//! # Positions
//! The position of a message is its 0-based index within its folder, in contents-table
//! order (the same on every run against an unchanged file); a resumed stream yields the
//! messages with a larger index.
//!
//! # Reading
//! The file's node and block indexes are loaded once (on the first
//! [`list_folders`](legacyflo_core::Source::list_folders) or
//! [`stream`](legacyflo_core::Source::stream)) and shared by all folder streams; messages
//! are read lazily, one at a time, on tokio's blocking pool. The file is opened read-only.

mod source;

pub use source::PstSource;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "pst";

#[cfg(test)]
mod tests;
