//! The eml-zip source: a ZIP archive of `.eml` files.
//!
//! # Folders
//! The directories inside the ZIP are the folders (`Projekte/Entwürfe/000001.eml` →
//! `["Projekte", "Entwürfe"]`); `/` and `\` both separate segments. Entries at the root
//! belong to `["INBOX"]`. Names are decoded as UTF-8 (invalid bytes are replaced). Entries
//! written by legacyflo's ZIP sink (their comment starts with `lf1`) have their directory
//! segments percent-unescaped, the inverse of the sink's escaping.
//!
//! # Entries
//! - Entries are read in central-directory order, one at a time, each inflated as a
//!   stream into a spill buffer: up to 32 MiB in memory, the rest in a temporary file, never
//!   more than the per-message limit (2 GiB by default, [`EmlZipSource::with_limits`]). The
//!   size an entry's header declares is a hint only: an entry declaring more than the limit
//!   is refused before inflating, and one that inflates past its declared size is stopped
//!   there (a 5 MB entry inflating to 5 GiB costs neither memory nor the time to inflate it).
//!   The CRC-32 is checked at the end of every entry.
//! - Every entry is a message or reported: directory entries (their name ends in `/`) are
//!   skipped unless they hold bytes (then reported), and so is a `.csv` at the root (a
//!   content list). Any other entry whose name does not end in `.eml` is reported as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable) with the reason
//!   `not an .eml file: <name>`; so are symbolic link entries (never followed), entries
//!   without a file name, entries over the limit, a CRC mismatch and an entry that cannot be
//!   inflated, each with its reason.
//! - Several entries with one name: the ZIP reader keeps one of them (the last in the
//!   central directory); the others are counted from the central directory and reported as
//!   skipped entries of their folder ([`FolderInfo::skipped`](legacyflo_core::FolderInfo)).
//! - Flags and the internal date are restored from the entry comment legacyflo's ZIP sink
//!   writes (`lf1 d=<date> f=<letters> k=<keyword>…`); other entries have no flags and no
//!   internal date (the `Date:` header then serves for filters).
//!
//! # Ids and positions
//! `source_id` is the entry name; the position is the entry's index in the central
//! directory, and a resumed stream yields the folder's entries with a larger index.
//! ZIP64 archives are read as any other.

mod source;

pub use source::EmlZipSource;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "eml-zip";

#[cfg(test)]
mod tests;
