//! The mbox sink: a tree of mboxrd files, one per folder.
//!
//! # Files
//! Folder `["A", "B"]` goes to `<dest>/A/B.mbox` (the root path to `INBOX.mbox`). Each
//! segment is escaped: `%`, `/`, `\`, `:`, `*`, `?`, `"`, `<`, `>`, `|`, control
//! characters, a leading `.`, a trailing `.` or space and the `.` of a trailing
//! `.mbox`/`.sbd` become `%XX` (upper-case hex of each UTF-8 byte); the mbox source
//! un-escapes exactly this, so names round-trip. A folder whose file name would exceed 255
//! bytes cannot be stored: its messages are
//! [`Rejected`](legacyflo_core::WriteOutcome::Rejected).
//!
//! # Messages
//! Each message is appended as: `From <sender> <date>` where the sender is the address of
//! the first `Return-Path:` (else `From:`) header or `MAILER-DAEMON`, and the date is the
//! internal date (else the `Date:` header, else the epoch) in asctime form, UTC
//! (`Fri Nov  1 09:05:07 2024`); then the bytes with every line matching `^>*From ` given
//! one more `>` (mboxrd); then a blank line. A message that does not end with a line feed
//! gets one, and its `From ` line ends with the token `legacyflo-no-eol` so the mbox source
//! removes it again: every message reads back byte for byte. Flags are not stored (the
//! bytes are never changed to add `Status:` headers).
//!
//! # Durability and resume
//! Files are appended through buffers; [`commit`](legacyflo_core::Sink::commit) flushes and
//! syncs every file written since the last commit (and new directories) and returns a state
//! with each file's committed length. [`open`](legacyflo_core::Sink::open) with a state
//! and [`abort`](legacyflo_core::Sink::abort) truncate every file to its committed length
//! and delete the files created after the commit. `open(None)` starts a new run: a folder's
//! file is created empty (replacing an old one) the first time the run writes to it.
//!
//! # Duplicates and the journal
//! The run keeps a journal in `<dest>/.legacyflo/mbox-<run>.journal`: a line `F <file>`
//! (synced) before it creates a file, and a line `M <32 hex digits>` per message with the
//! first 128 bits of SHA-256 over its folder segments and source id; the state records the
//! journal's committed length. On resume the journal tells which files to delete and
//! rebuilds the set of stored identities, so a (folder, source id) written twice, in the
//! run or across a resume, gives [`Duplicate`](legacyflo_core::WriteOutcome::Duplicate).
//! [`finish`](legacyflo_core::Sink::finish) deletes the journal (and the `.legacyflo`
//! directory when empty); a state whose journal is gone belongs to a finished run, and
//! `finish` then returns that state's totals.

mod format;
mod run;
mod sink;

pub use sink::MboxSink;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "mbox";

#[cfg(test)]
mod tests;
