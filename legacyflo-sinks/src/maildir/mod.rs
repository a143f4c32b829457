//! The Maildir sink: a Maildir++ tree.
//!
//! # Folders
//! `["INBOX"]` (and the root path) is the root Maildir (`<dest>/cur`, `new`, `tmp`); every
//! other folder is `<dest>/.<seg1>.<seg2>…` with `cur`, `new`, `tmp` and an empty
//! `maildirfolder` file, `["INBOX", "Sub"]` being `.INBOX.Sub`. Each segment is encoded as
//! IMAP modified UTF-7 and then `~`, `.` and `/` are written `~7e`, `~2e`, `~2f`
//! (`Entwürfe` → `Entw&APw-rfe`, `v1.2` → `v1~2e2`); the Maildir source decodes exactly
//! this, so names round-trip. A folder whose directory name would exceed 255 bytes cannot
//! be stored: its messages are [`Rejected`](legacyflo_core::WriteOutcome::Rejected).
//!
//! # Files
//! A message is stored as `cur/<secs>.<id>.legacyflo:2,<flags>`: `secs` is its internal
//! date in unix seconds (0 without one), `id` the 32 hex digits of the first 128 bits of
//! SHA-256 over its folder segments and source id, `flags` the Maildir letters of its
//! system flags in ASCII order (`D` Draft, `F` Flagged, `R` Answered, `S` Seen, `T`
//! Deleted; keywords are not stored). The file's mtime is the internal date (to the
//! nanosecond). The name depends only on the message, so a re-delivered message finds its
//! file.
//!
//! # Durability
//! [`write`](legacyflo_core::Sink::write) writes the file to `tmp/`, syncs it and sets its
//! mtime; [`commit`](legacyflo_core::Sink::commit) renames every pending file into `cur/`
//! and syncs the directories that changed, so nothing is visible before it is committed.
//! [`abort`](legacyflo_core::Sink::abort) deletes the pending files; `open` deletes files
//! this sink left in `tmp/` (an interrupted run), which restores the tree to the last
//! commit. A crash inside a commit can leave part of its messages in `cur/`: they are then
//! answered [`Duplicate`](legacyflo_core::WriteOutcome::Duplicate) when re-delivered. The
//! state only counts the messages this run stored (for the output).
//!
//! # Duplicates
//! Each folder's existing `*.legacyflo` files are indexed when the folder is begun, so a
//! (folder, source id) already in the tree, from this run or an earlier one, gives
//! [`Duplicate`](legacyflo_core::WriteOutcome::Duplicate). Files of other programs are left
//! alone.

mod sink;

pub use sink::MaildirSink;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "maildir";

#[cfg(test)]
mod tests;
