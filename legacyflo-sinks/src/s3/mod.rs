//! The S3 sink: ZIP and PST outputs in a bucket, with their content lists beside them.
//!
//! # ZIP: streamed while it is written
//! A ZIP of `.eml` never touches the local disk. Its bytes (local headers and deflated
//! entries, by the same entry pipeline and record
//! formats as the local [`ZipSink`](crate::zip::ZipSink)) go into one multipart upload
//! of `<dir>/<name>.zip`, the content-list rows into another of `<dir>/<name>.csv`. Both
//! are cut into parts of the upload's part size (8 MiB by default, 8–64 MiB) as they
//! grow; each part carries its CRC32C (`x-amz-checksum-crc32c`), which S3 verifies, and
//! several are in flight at once ([`STREAM_IN_FLIGHT`] by default). Memory is bounded
//! whatever the output's size: each upload reuses at most `in flight + 1` part buffers
//! for all its parts (the content list's rarely needs more than two), a commit copies the
//! tails of both streams into one of two reused buffers (kept until the next commit for a
//! rollback), and the entries are compressed on a fixed set of threads (see
//! `zip/compress.rs`), at most 16 MiB of messages at once; add the central directory
//! (about 150 bytes per entry).
//!
//! # Commits, checkpoints and what is stored where
//! [`commit`](legacyflo_core::Sink::commit) waits until every part sent so far is
//! acknowledged, then puts, under the state prefix `<dir>/<name>.zip.partial/`:
//! - `v001-tail-<seq>`: the bytes after the last full part of the ZIP followed by those
//!   of the content list (each less than one part), one object per commit;
//! - `v001-cd-<offset>`: the central-directory records added since the last commit.
//!
//! and returns the state the engine saves with its checkpoints: the run id, for the
//! volume being written the `UploadId` of both uploads with their acknowledged parts
//! (number, ETag, CRC32C, size), the byte counts, the entry count, the tail object's
//! commit number, length and CRC32C, the central directory's length and CRC32C and each
//! folder's last ordinal; and the outputs of completed volumes. The three most recent
//! tails are kept (a resume uses the state the engine saved last, which may be one commit
//! behind when a save failed), older ones deleted.
//! Messages count as stored only once their commit returned, as the contract asks.
//!
//! # Resume, on any machine
//! `open` with a state needs nothing but the bucket: it checks that the uploads are still
//! open (`ListMultipartUploads`) and that `ListParts` shows every recorded part unchanged
//! (same ETag, size and CRC32C; S3 checks the parts again at completion), reads the tail
//! and the central
//! directory back (checking their CRC32C), rebuilds the duplicate set from the entry
//! comments and continues after the last recorded part: parts sent after the checkpoint
//! are overwritten or left out of the completion. Unfinished uploads of the output keys
//! that the state does not refer to are aborted. [`abort`](legacyflo_core::Sink::abort)
//! rewinds the same way from memory.
//!
//! When the ZIP's upload is gone, the volume counts as complete only if
//! `<dir>/<name>.zip` exists with this run's `legacyflo-run` metadata and the committed
//! size (a run killed between completion and its final checkpoint; the content list is
//! then completed if it is still open). Otherwise the committed messages cannot be
//! restored, and since a sink cannot reset the engine's checkpoints, `open` fails
//! naming the object and the number of messages lost, and asking to delete the request's
//! checkpoint to start over (a fresh start aborts every unfinished upload of the output
//! keys and deletes the state prefix).
//!
//! # Errors
//! An error before any commit referred to the uploads aborts them: nothing is left
//! behind. After a commit the uploads belong to the checkpoint and stay for the resume
//! (re-running the request completes them; a bucket lifecycle rule
//! `AbortIncompleteMultipartUpload` is the usual safety net).
//!
//! # Finish and volumes
//! [`finish`](legacyflo_core::Sink::finish) sends the tail, the central directory and
//! the end records as the last part(s), completes the ZIP upload (checking the composite
//! CRC32C S3 answers), then the content list's, and deletes the state objects. A volume
//! is sealed at the first commit after it holds [`S3Sink::with_volume_cap`] bytes of
//! messages (default [`DEFAULT_ZIP_VOLUME_CAP`], the service's 48 GB), and completed
//! before the next write (so only committed messages are in it); the next volume is
//! `<name>-002.zip` with `<name>-002.csv`. The duplicate set spans the volumes of one
//! process; after a resume it holds the current volume's messages.
//!
//! # PST: spooled
//! A PST needs seeking, so it is built by the local [`PstSink`](crate::pst::PstSink) in a
//! spool directory on local disk, with every durability and resume rule of that sink;
//! [`finish`](legacyflo_core::Sink::finish) then uploads each finished file (every volume
//! and every content list) as a checksummed multipart upload
//! ([`legacyflo_s3::upload_file`]), and removes the spooled files. (A checkpoint of a ZIP
//! written by an older build, which spooled ZIPs too, is resumed that way.)
//!
//! The spool is `<spool root>/<16 hex digits of the destination's hash>/`, the root being
//! `$LEGACYFLO_SPOOL_DIR` or `.legacyflo/spool`. It must hold about twice the PST (the
//! PST sink's own spool of raw messages plus the PST it writes at the end). `open`
//! refuses to start when the spool's file system has less than [`spool_need`] bytes
//! free: the output estimated from the source's size when the source is a file or tree
//! ([`S3Sink::with_source`], set by `open_sink`), never less than
//! [`S3Sink::with_min_free`] (default 1 GiB). Multipart uploads left unfinished by a
//! killed process are aborted at `open`. A resume on a machine without the spool fails
//! with a clear error (the unfinished PST is not in S3 yet). Once every object is
//! uploaded a small marker (`uploaded.json`) stays in the spool directory, so a run
//! killed between the upload and its final checkpoint reports the uploaded objects.
//!
//! # Checks before any work
//! `open` runs [`legacyflo_s3::check_bucket`] with write access (`HeadBucket`, a probe
//! `PutObject` and `DeleteObject`): a missing bucket, refused credentials or a denied
//! `PutObject` fail before anything is read, naming the bucket and the action.

mod sink;
mod spool;
mod state;
mod stream;
mod volume;

pub use sink::{DEFAULT_ZIP_VOLUME_CAP, S3Sink, STREAM_IN_FLIGHT};
pub use spool::spool_need;

/// Name of this backend in logs and reports.
pub(crate) const BACKEND: &str = "s3";
