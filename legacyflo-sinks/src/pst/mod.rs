//! The PST sink: an Outlook data file (Unicode PST) written with
//! [`legacyflo_pst::PstWriter`], with a content list beside each volume.
//!
//! # Layout
//! - The messages go below "Top of Personal Folders", in folders with the same segments
//!   (created as needed, container class `IPF.Note`). Messages of the root folder (empty
//!   path) go to `INBOX`, as a PST folder cannot be the store's root.
//! - The PST is `<dest>`. When a volume reaches the cap ([`WriterOptions::volume_cap`],
//!   default 50 GB, Outlook's limit) output continues in `<stem>-002.pst`,
//!   `<stem>-003.pst`, … (the writer's naming; a message is never split).
//! - Each volume has a content list beside it (`<stem>.csv`, `<stem>-002.csv`, …, see
//!   [`legacyflo_core::contentlist`]) with one row per message stored in that volume; the
//!   row is computed from the message as it was written (its exact bytes' size and
//!   SHA-256), and its `entry` column is `<folder segments joined by '/'>/<node id>`, the
//!   node id (decimal) being the `source_id` the PST source gives the message.
//!
//! # What a PST keeps
//! A PST stores properties, not bytes: the message is parsed (MIME) and its fields,
//! bodies and attachments are stored; reading it back rebuilds an equivalent message, not
//! the same bytes. Flags: `\Seen` → read, `\Flagged` → follow-up flag; other flags and
//! keywords are dropped. The internal date becomes the delivery time. A message that does
//! not parse as MIME is still stored (its header block as transport headers, the rest as
//! text body), and the writer's problems are logged.
//!
//! # Durability and resume: the spool
//! The writer builds the PST's indexes at the end, so a PST is not valid in the middle of a
//! run. Writes therefore go to a spool, `<dest>.partial.spool`: a header and then one
//! length-prefixed record per message (folder, source id, read and flagged flags, internal
//! date, raw bytes).
//! - [`commit`](legacyflo_core::Sink::commit) flushes and syncs the spool and returns a
//!   state with the spool's committed length and record count.
//! - [`open`](legacyflo_core::Sink::open) with a state truncates the spool to the committed
//!   length (a shorter spool is an error) and rebuilds the duplicate set by scanning its
//!   record headers (the message bytes are skipped, not read). `open(None)` starts a new
//!   spool, replacing an old one. [`abort`](legacyflo_core::Sink::abort) truncates the spool
//!   to the last commit.
//! - While the run goes on, a thread feeds every spooled record to the PST writer as well
//!   (after `open`, first the spool's committed records), so reading the source and
//!   writing the PST overlap; at most 32 MiB of messages wait for it. The spool stays the
//!   durable copy: after an `abort` the thread starts again from the committed records,
//!   and if it fails, `finish` builds the PST from the spool in one pass instead.
//! - [`finish`](legacyflo_core::Sink::finish) commits, waits for that thread (or streams
//!   the spool through the PST writer) into `<dest>.partial` (further volumes are written as e.g.
//!   `x.pst-002.partial`, the writer's naming applied to the partial name), the content
//!   lists into `<csv>.partial`; then renames every volume and list to its final name,
//!   removes volumes (and their lists) numbered beyond the last one, left by an earlier run
//!   to the same destination, syncs the directory and deletes the spool. If the process dies during `finish`,
//!   resuming from the last state simply runs the whole `finish` again from the spool. A
//!   state whose spool is gone while `<dest>` exists belongs to a finished run: `finish`
//!   then returns the outputs read from the finished files (message counts read from the
//!   PSTs).
//!
//! **Disk space:** while running, the sink needs about twice the size of the output: the
//! spool holds every message's raw bytes until `finish` has written the PST, and the PST is
//! about as large as the raw mail (bodies and attachments decoded, plus indexes).
//!
//! # Duplicates and rejections
//! A (folder, source id) written twice gives
//! [`WriteOutcome::Duplicate`](legacyflo_core::WriteOutcome::Duplicate); the set of
//! identities is kept in memory (16 bytes per message) and rebuilt from the spool on
//! resume. A message is [`Rejected`](legacyflo_core::WriteOutcome::Rejected) at write time
//! when it cannot fit in one volume (its size × 3 plus the writer's reserve exceeds the
//! volume cap) or is 2 GiB or larger. A message the writer refuses during `finish` despite
//! this check (a format limit: more parts than one node's subnode tree indexes, a 4 GiB
//! property stream) is left out of the PST and of the content list and handed to the
//! engine as [`Settled::Refused`](legacyflo_core::Settled) by [`settled`](legacyflo_core::Sink::settled): the run report
//! counts it as skipped, with its source id and the writer's reason.

mod build;
mod live;
mod sink;
mod spool;

pub use legacyflo_pst::WriterOptions;
pub use sink::PstSink;

/// The backend name used in errors and logs.
pub(crate) const BACKEND: &str = "pst";

#[cfg(test)]
mod tests;
