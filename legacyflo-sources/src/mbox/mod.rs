//! The mbox source: one mbox file, a directory tree of them, or a `.zip` of either.
//!
//! # Folders
//! - A single file is one folder named after its stem: `INBOX.mbox` → `["INBOX"]`.
//! - In a tree (a directory or a `.zip`), a file counts when its name ends in `.mbox` or its
//!   content starts with `From `. Its folder is its relative path with the last segment's
//!   `.mbox` removed (`Projekte/Entwürfe.mbox` → `["Projekte", "Entwürfe"]`), Thunderbird's
//!   `X.sbd/` directories are the sub-folders of `X`, and Apple Mail's `X.mbox/mbox` is
//!   `X`. Segments are percent-unescaped (the inverse of legacyflo's mbox sink, see
//!   `legacyflo-sinks`), hidden files (`.name`) and `__MACOSX/` are skipped. A file directly
//!   at the root of a ZIP with no name left is `INBOX`; two files that map to the same
//!   folder are kept apart by appending ` (2)` to the second one's name.
//!
//! # Messages
//! - A message starts at a line beginning with `From ` at the start of the file or after a
//!   blank line (`\n` or `\r\n`). The blank line just before the next such line (or at the
//!   end of the file) separates messages and is not part of the message.
//! - Lines matching `^>+From ` lose one `>` (mboxrd). This is exact for mboxrd; for mboxo
//!   files a body line that really began with `>From ` loses its `>` (mboxo cannot tell).
//! - A `From ` line whose last token is `legacyflo-no-eol` was written by legacyflo's sink
//!   for a message that did not end in a line feed; the line feed the sink added is removed.
//!   With this, a message written by the mbox sink reads back byte for byte.
//! - `internal_date` is the `From ` line's asctime date (UTC unless a numeric zone is
//!   given); flags come from `Status:`/`X-Status:` (`R` Seen, `A` Answered, `F` Flagged,
//!   `T` Draft, `D` Deleted, `O` ignored) and `X-Mozilla-Status:`; the bytes are unchanged.
//! - Bytes before the first `From ` line that are not blank are yielded as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable).
//!
//! # Ids and positions
//! `source_id` is the decimal byte offset of the message's `From ` line; the position is the
//! offset just after the message (where the next `From ` line starts), so a resumed stream
//! seeks there. In a ZIP the offsets are into the decompressed entry, and resuming reads
//! up to the position again.

mod parse;
mod source;
mod tree;

pub use source::MboxSource;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "mbox";

#[cfg(test)]
mod tests;
