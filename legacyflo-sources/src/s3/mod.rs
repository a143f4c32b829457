//! The S3 source: a ZIP of `.eml`, a PST or an mbox file (plain or zipped) read from an
//! `s3://` object.
//!
//! # How it works
//! The first [`list_folders`](legacyflo_core::Source::list_folders) checks the bucket and
//! the object (`HeadBucket`, `HeadObject`: a missing bucket or object, refused
//! credentials or a denied read fail there, naming the bucket and the action), downloads
//! the object into a private spool directory (the SDK verifies the stored checksum; the
//! length is checked) under the file name of its key, and then reads it with the local
//! source of its format ([`EmlZipSource`](crate::emlzip::EmlZipSource),
//! [`PstSource`](crate::pst::PstSource), [`MboxSource`](crate::mbox::MboxSource), which
//! also reads a `.zip` of mbox files). Folders, positions and message bytes are those of
//! the local source, so a resumed run (which downloads the object again) continues after
//! its checkpoint.
//!
//! # Spool and disk
//! The spool is a temporary directory under `$LEGACYFLO_SPOOL_DIR` (else the system's
//! temporary directory); it needs the object's size and is removed when the source is
//! dropped. A Maildir cannot be an S3 object: zip it, or read it from a local path.

mod source;

pub use source::S3Source;

/// Name of this backend in logs and reports.
pub(crate) const BACKEND: &str = "s3";
