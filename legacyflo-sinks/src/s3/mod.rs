//! The S3 sink: ZIP and PST outputs in a bucket, with their content lists beside them.
//!
//! # How it works
//! The archive is built by the local sink of its format ([`ZipSink`](crate::zip::ZipSink)
//! or [`PstSink`](crate::pst::PstSink)) in a spool directory on local disk, with every
//! durability and resume rule of that sink; [`finish`](legacyflo_core::Sink::finish) then
//! uploads each finished file (every volume and every content list) as a checksummed
//! multipart upload ([`legacyflo_s3::upload_file`]: CRC32C on every part, verified by S3;
//! several parts in flight; the object exists only once every part is acknowledged; on
//! failure the upload is aborted), and removes the spooled files.
//!
//! # Names
//! The object keys are the destination key and its siblings: `<dir>/<name>.zip` and
//! `<dir>/<name>.csv`; PST volumes `<dir>/<name>-002.pst` with `<dir>/<name>-002.csv`.
//!
//! # Spool and disk
//! The spool is `<spool root>/<16 hex digits of the destination's hash>/`, the root being
//! `$LEGACYFLO_SPOOL_DIR` or `.legacyflo/spool`. It must hold the whole output: a ZIP
//! needs about the output's size; a PST about twice (the PST sink's own spool of raw
//! messages plus the PST it writes at the end). `open` refuses to start when the spool's
//! file system has less than [`spool_need`] bytes free: the output estimated from the
//! source's size when the source is a file or tree ([`S3Sink::with_source`], set by
//! `open_sink`), never less than [`S3Sink::with_min_free`] (default 1 GiB).
//!
//! # Resume
//! Commits are those of the local sink (the spool is synced). After a crash, re-running
//! on the same machine resumes the spool; multipart uploads left unfinished by a killed
//! process are aborted at `open` (`ListMultipartUploads` for the output keys). A resume
//! on a machine without the spool fails with a clear error (the unfinished archive is
//! not in S3 yet). Once every object is uploaded a small marker (`uploaded.json`) stays
//! in the spool directory, so a run killed between the upload and its final checkpoint
//! reports the uploaded objects instead of failing.
//!
//! # Checks before any work
//! `open` runs [`legacyflo_s3::check_bucket`] with write access (`HeadBucket`, a probe
//! `PutObject` and `DeleteObject`): a missing bucket, refused credentials or a denied
//! `PutObject` fail before anything is read, naming the bucket and the action.

mod sink;

pub use sink::{S3Sink, spool_need};

/// Name of this backend in logs and reports.
pub(crate) const BACKEND: &str = "s3";
