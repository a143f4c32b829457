//! Deterministic mail corpora for legacyflo's tests, examples and benchmarks.
//!
//! * [`sample_mailbox`]: the quickstart mailbox (300 messages, nested and non-ASCII folders,
//!   many charsets and MIME shapes, one message over 5 MB, a few malformed messages).
//!   It is committed as an mbox tree in `samples/mailbox/`.
//! * [`bench_corpus`]: lazily generated corpora of any size with a realistic size mix.
//! * [`write_mbox_tree`] / [`write_maildir_tree`]: put messages on disk.
//!
//! Everything is seeded and dependency-free (own SplitMix64 PRNG, base64, quoted-printable,
//! RFC 2047, legacy charset encoders), so the same seed gives the same bytes on every
//! platform and every run.

mod bench;
mod blocks;
mod encode;
mod mime;
mod rng;
mod sample;
mod text;
mod write;

pub use bench::{BIG_MESSAGE_SIZE, CorpusSpec, SIZE_MIX, bench_corpus, bench_folder};
pub use encode::mutf7_encode;
pub use sample::{SAMPLE_BIG_ATTACHMENT, SAMPLE_SEED, sample_mailbox, sample_malformed};
pub use write::{
    envelope_sender, maildir_escape_segment, maildir_flag_letters, maildir_folder_dir,
    mbox_escape_segment, mbox_file_path, mbox_from_line, write_maildir_tree, write_mbox_tree,
    write_mboxrd_message,
};

/// One generated message and where it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenMessage {
    /// Folder path segments, e.g. `["Projekte", "Entwürfe"]`; `["INBOX"]` for the inbox.
    pub folder: Vec<String>,
    /// The RFC 5322 message bytes (CRLF line endings, except for deliberately malformed
    /// messages). Always ends with a line feed.
    pub raw: Vec<u8>,
    /// IMAP system flags such as `\Seen`, `\Flagged`, `\Answered`, `\Draft`.
    pub flags: Vec<String>,
    /// Internal (arrival) date, unix seconds. Equals the instant of the `Date:` header
    /// when the message has one.
    pub internal_date: i64,
}

impl GenMessage {
    /// The folder path joined with `sep`, e.g. `Projekte/Entwürfe`.
    pub fn folder_name(&self, sep: char) -> String {
        let mut s = String::new();
        for (i, seg) in self.folder.iter().enumerate() {
            if i > 0 {
                s.push(sep);
            }
            s.push_str(seg);
        }
        s
    }
}
