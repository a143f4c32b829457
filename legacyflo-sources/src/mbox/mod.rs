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
//!   folder are kept apart by appending ` (2)` to the second one's name (with a note).
//!
//! # Symbolic links
//! A single file or a `.zip` given as the input may be a symbolic link (the path given is
//! followed). Below a directory input **no link is followed**: every link that is not
//! hidden (a link to a file or a directory, inside or outside the tree, dangling or a
//! loop) is listed as a folder named by its path that holds nothing but one skipped entry
//! ([`FolderInfo::skipped`](legacyflo_core::FolderInfo)) naming the link and its target, so
//! the run ends "done with skipped messages" and nothing outside the tree is read. The
//! walk stays linear whatever the links; a tree more than 64 directories deep is not read
//! below that level (a skipped entry says where). Files are opened with `O_NOFOLLOW`
//! relative to directories opened the same way, and must be regular files (`fstat`), so a
//! file swapped for a link after the listing is refused (the folder's stream fails with
//! an error naming it). A link entry of a ZIP is reported the same way.
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
//! - Memory is bounded whatever the file holds: lines are read in pieces of at most 64 KiB,
//!   a message is held in memory up to 32 MiB and in a temporary file beyond. These are
//!   yielded as `Unreadable` with the reason (and the stream goes on after them):
//!   a message whose `From ` line is longer than 64 KiB (a CR-only file is one such line:
//!   reported whole, never turned into an empty message), a message larger than the
//!   per-message limit (2 GiB by default, [`MboxSource::with_limits`]), and a `From ` line
//!   that ends the file. An empty message is only the shape `From …` + blank line, which
//!   is how mbox writers (legacyflo's sink included) store one.
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
