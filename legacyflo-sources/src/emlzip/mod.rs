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
//! - Entries are read in central-directory order, one at a time, each decompressed as a
//!   stream into one message.
//! - Directory entries are skipped, and so is a `.csv` at the root (a content list).
//! - Any other entry whose name does not end in `.eml` is reported as
//!   [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent::Unreadable) with the reason
//!   `not an .eml file: <name>`; an entry that cannot be decompressed is reported the same
//!   way with the error.
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
