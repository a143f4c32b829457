//! Helpers shared by the file sinks.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use legacyflo_core::{FolderPath, Message};
use sha2::{Digest, Sha256};
use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs blocking file I/O from an async method: through
/// [`tokio::task::block_in_place`] on a multi-thread runtime (the engine's), inline
/// elsewhere (a current-thread runtime cannot hand its thread over). Sinks must therefore
/// not be driven from a `LocalSet` on a multi-thread runtime, where `block_in_place`
/// refuses to run.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The identity of a message in a sink: the first 128 bits of
/// SHA-256(folder segments each followed by NUL, a NUL, the source id).
pub(crate) fn message_key(message: &Message) -> u128 {
    key_of(&message.folder, &message.source_id)
}

/// See [`message_key`].
pub(crate) fn key_of(folder: &FolderPath, source_id: &str) -> u128 {
    let mut h = Sha256::new();
    for s in folder.segments() {
        h.update(s.as_bytes());
        h.update([0]);
    }
    h.update([0]);
    h.update(source_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_be_bytes(b)
}

/// Syncs directory `dir` so new names in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes `path`; a missing file is fine.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The bytes before the first blank line (the header section), or the whole message.
pub(crate) fn header_section(raw: &[u8]) -> &[u8] {
    let end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    &raw[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
