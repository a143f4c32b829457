//! The ZIP sink: a ZIP of `.eml` files, one per message, with a content list beside it.
//!
//! # Layout
//! - The archive is written to `<dest>.partial` and renamed to `<dest>` by
//!   [`finish`](legacyflo_core::Sink::finish); the content list (see
//!   [`legacyflo_core::contentlist`]) goes to `<dest stem>.csv` the same way, one row per
//!   entry, its `entry` column holding the entry name.
//! - Entry names are `<folder segments joined by '/'>/<NNNNNN>.eml`, where `NNNNNN` is the
//!   1-based ordinal of the message within its folder in this archive, zero-padded to six
//!   digits (more when a folder holds a million messages or more). The same input in the
//!   same order gives the same names. Each segment is escaped: `%`, `/`, `\`, `:`, `*`,
//!   `?`, `"`, `<`, `>`, `|`, control characters, a leading `.` (so `.` and `..` cannot
//!   occur), a trailing `.` or space and the `.` of a trailing `.mbox`/`.sbd` become `%XX`
//!   (upper-case hex of each UTF-8 byte); everything else, non-ASCII included, is kept as
//!   UTF-8 (the UTF-8 name flag is set). The eml-zip source reverses it.
//! - Entries are deflated (stored when deflate does not make them smaller). ZIP64 records
//!   are written whenever a size, an offset or the entry count needs them.
//!
//! # Flags and dates
//! The internal date is the entry's modification time: the MS-DOS time (UTC, 2-second
//! resolution) and an extended-timestamp field (`0x5455`, unix seconds). The exact date,
//! the flags and the sink's identity of the message are in the entry comment:
//! `lf1 d=<RFC 3339 date> f=<Maildir letters S R F T D> k=<keyword>… h=<32 hex digits>`
//! (keywords percent-escaped). The eml-zip source restores flags and date from it.
//!
//! # Durability and resume
//! - [`commit`](legacyflo_core::Sink::commit) writes the central directory and end records
//!   after the last entry, truncates the file there and syncs it, so `<dest>.partial` is a
//!   valid, complete ZIP of the committed messages. It also appends the central-directory
//!   records written since the previous commit to `<dest>.partial.cd`, an append-only copy
//!   of the central directory, and syncs it; then it commits the content list and returns
//!   a state with the central directory's offset and length (= the copy's committed
//!   length), the committed archive length, the entry count, each folder's last ordinal and
//!   the content list's state. Later entries overwrite the central directory in the
//!   archive. A commit costs O(entries) for the rewritten directory and nothing more; the
//!   directory is also kept in memory (about 100 bytes per entry).
//! - [`open`](legacyflo_core::Sink::open) with a state cuts the copy back to the recorded
//!   length, truncates the partial archive to the recorded directory offset and writes the
//!   directory and end records again, so the file is exactly the committed archive; the
//!   content list is cut back with
//!   [`ContentList::resume`](legacyflo_core::contentlist::ContentList::resume) and the
//!   folder ordinals come from the state. A copy that does not match the state is an
//!   error. `open(None)` starts a new archive, replacing any old partial file.
//!   [`abort`](legacyflo_core::Sink::abort) does the same restoration from memory.
//! - [`finish`](legacyflo_core::Sink::finish) renames the archive and the content list and
//!   deletes the copy. A state whose partial file is gone while `<dest>` exists belongs to
//!   a finished run: `finish` then returns the outputs read from the finished files.
//!
//! # Duplicates
//! A (folder, source id) written twice gives [`WriteOutcome::Duplicate`](legacyflo_core::WriteOutcome::Duplicate).
//! The set of identities is kept in memory and, on resume,
//! rebuilt from the `h=` field of the committed entries' comments (read from the saved
//! copy of the central directory), so it also holds across a resume.

mod archive;
mod compress;
pub(crate) mod format;
pub(crate) mod pipeline;
mod sink;

pub use sink::ZipSink;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "zip";

#[cfg(test)]
mod tests;
