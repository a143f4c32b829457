//! The Maildir source: a Maildir, a Maildir++ tree, or a Dovecot `LAYOUT=fs` tree.
//!
//! # Symbolic links
//! The root may be a symbolic link (the path given is followed). Below it, **no link is
//! ever followed**, whatever it points to (inside or outside the root), so nothing outside
//! the tree is read, link loops cannot repeat mail, and the walk stays linear:
//! - a link in `cur/` or `new/` is an entry of its folder reported as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable) (reason: a
//!   symbolic link, naming its target), as are directories, FIFOs and devices there;
//! - a link where a folder directory could be (a link to a directory, a dangling link or a
//!   loop), and a `cur/` or `new/` that is a link, is a skipped entry of the folder that
//!   path names ([`FolderInfo::skipped`](legacyflo_core::FolderInfo)), listed even when it
//!   holds nothing else; a link to a file outside `cur/` and `new/` is no mail and is
//!   ignored; a `dovecot-keywords` that is a link is not read (a note says so).
//!
//! Either way the run ends "done with skipped messages" and the report names each link.
//! Message files are opened with `O_NOFOLLOW` relative to directories themselves opened
//! with `O_NOFOLLOW`, and `fstat` must show a regular file, so a file swapped for a link
//! (or a FIFO) between the listing and the read is refused too. A tree more than 64
//! directories deep is not read below that level (a skipped entry says where).
//!
//! # Folders
//! Every directory below the root that holds `cur/` or `new/` is a folder:
//! - The root Maildir is `["INBOX"]`.
//! - Maildir++: a directory `.A.B` directly under the root is the folder `["A", "B"]` (`.`
//!   separates segments). A name with an empty part (`...`, `..foo`, `.a..b`, `.a.`) is
//!   kept whole as one segment (`..foo` → `["..foo"]`), with a note, so that it neither
//!   vanishes nor merges into another folder.
//! - Dovecot `LAYOUT=fs`: a directory reached from the root through directories whose
//!   names do not start with `.` is a folder named by its relative path; parents without
//!   `cur/`/`new/` are not listed.
//! - Any other (a Maildir inside a hidden directory or inside a Maildir++ folder) is named
//!   by its relative path, with a note.
//! - Every segment is decoded from modified UTF-7 (`&AOQ-` → `ä`, `&-` → `&`); legacyflo's
//!   Maildir sink also writes `.` and `/` inside `&…-` runs (`&AC4-`, `&AC8-`), which this
//!   decoding turns back into `.` and `/`. An invalid `&…-` run is kept literally.
//! - Two directories that map to the same folder name are kept apart: the one whose
//!   relative path sorts later gets ` (2)` (` (3)`, …) appended to its last segment, with a
//!   note. The one exception is a Maildir++ `.INBOX` next to a root Maildir: both are INBOX
//!   and are read as one folder (with a note).
//!
//! # Messages, order, ids and positions
//! - Entries of `cur/` and `new/` are messages; `tmp/` and names starting with `.` are
//!   skipped.
//! - A file's unique part is its name up to the first `:`; flags come from the `:2,` info
//!   (`S` Seen, `R` Answered, `F` Flagged, `T` Deleted, `D` Draft, Dovecot keyword letters
//!   `a`–`z` through `dovecot-keywords`); `internal_date` is the file's mtime.
//! - Order: a stable sort by unique part (then directory, then full path), so the order is
//!   the same on every run while the folder is unchanged; Maildir unique parts usually start
//!   with the delivery time, so this is roughly chronological.
//! - `source_id` is the unique part (a repeated unique part gets `#2`, `#3`, …); the position
//!   of a message is its `source_id`, and a resumed stream yields the messages after it in
//!   this order (when that message has gone, those whose unique part sorts after it).
//! - A file that is gone when it is read was usually renamed by a live server (moved from
//!   `new/` to `cur/`, or its flags changed): the folder is listed again and the file with
//!   the same unique part that was not listed before is read instead (with the flags of its
//!   new name). When there is none the message was deleted meanwhile and is yielded as
//!   [`SourceEvent::Expunged`](legacyflo_core::SourceEvent::Expunged).
//! - A file that cannot be read, or is larger than the per-message limit (2 GiB by default,
//!   [`MaildirSource::with_limits`]), is yielded as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable); a message is held
//!   in memory up to 32 MiB, larger ones in a temporary file.

mod source;
mod tree;

pub use source::MaildirSource;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "maildir";

#[cfg(test)]
mod tests;
