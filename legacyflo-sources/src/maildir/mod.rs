//! The Maildir source: a Maildir, a Maildir++ tree, or a Dovecot `LAYOUT=fs` tree.
//!
//! # Folders
//! - The root Maildir (a root holding `cur/` or `new/`) is `["INBOX"]`.
//! - Maildir++: a directory `.A.B` directly under the root that holds `cur/` or `new/` is
//!   the folder `["A", "B"]` (`.` separates segments).
//! - Dovecot `LAYOUT=fs`: any other directory below the root (not `cur`, `new`, `tmp`, not
//!   hidden) that holds `cur/` or `new/` is a folder named by its relative path; parents
//!   without `cur/`/`new/` are not listed.
//! - Every segment is decoded from modified UTF-7 (`&AOQ-` → `ä`, `&-` → `&`); legacyflo's
//!   Maildir sink also writes `.` and `/` inside `&…-` runs (`&AC4-`, `&AC8-`), which this
//!   decoding turns back into `.` and `/`. An invalid `&…-` run is kept literally.
//! - Directories that map to the same folder (`.INBOX` next to a root Maildir) are read as
//!   one folder.
//!
//! # Messages, order, ids and positions
//! - Files in `cur/` and `new/` are messages; `tmp/` and hidden files are skipped.
//! - A file's unique part is its name up to the first `:`; flags come from the `:2,` info
//!   (`S` Seen, `R` Answered, `F` Flagged, `T` Deleted, `D` Draft, Dovecot keyword letters
//!   `a`–`z` through `dovecot-keywords`); `internal_date` is the file's mtime.
//! - Order: a stable sort by unique part (then directory, then full path), so the order is
//!   the same on every run while the folder is unchanged; Maildir unique parts usually start
//!   with the delivery time, so this is roughly chronological.
//! - `source_id` is the unique part (a repeated unique part gets `#2`, `#3`, …); the position
//!   of a message is its `source_id`, and a resumed stream yields the messages after it in
//!   this order (when that message has gone, those whose unique part sorts after it).
//! - A file that cannot be read is yielded as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable).

mod source;
mod tree;

pub use source::MaildirSource;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "maildir";

#[cfg(test)]
mod tests;
