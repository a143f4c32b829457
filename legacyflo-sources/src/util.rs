//! Helpers shared by the file sources: blocking readers behind async streams, a file
//! handle that many ZIP readers can share, and bounded reads of one message.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use legacyflo_core::spill::{SpillBuffer, SpillError, SpillLimits};
use legacyflo_core::{Error, ErrorKind, MessageStream, Result, SourceEvent};
use tokio::sync::mpsc;

use crate::error::SourceError;

/// Messages buffered between a blocking reader and the stream's consumer.
const CHANNEL_CAPACITY: usize = 8;

/// The sending half handed to a blocking reader.
pub(crate) struct Emitter {
    tx: mpsc::Sender<Result<SourceEvent>>,
}

impl Emitter {
    /// Sends one event; `false` when the consumer dropped the stream (the reader should stop).
    pub(crate) fn send(&self, event: SourceEvent) -> bool {
        self.tx.blocking_send(Ok(event)).is_ok()
    }
}

/// Runs `produce` on tokio's blocking pool and returns its events as a stream.
///
/// The reader owns its files; it stops when the stream is dropped. An `Err` it returns is
/// yielded as the stream's last item; a reader that panics yields an `Err` as well, so a
/// failure never looks like the end of a folder.
pub(crate) fn blocking_stream<'a, F>(backend: &'static str, produce: F) -> MessageStream<'a>
where
    F: FnOnce(&Emitter) -> std::result::Result<(), SourceError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let handle = tokio::task::spawn_blocking(move || {
        let emitter = Emitter { tx };
        if let Err(e) = produce(&emitter) {
            let _ = emitter.tx.blocking_send(Err(e.into()));
        }
    });
    Box::pin(futures::stream::unfold(
        (rx, Some(handle)),
        move |(mut rx, handle)| async move {
            if let Some(item) = rx.recv().await {
                return Some((item, (rx, handle)));
            }
            match handle?.await {
                Ok(()) => None,
                Err(e) => Some((
                    Err(Error::backend(
                        backend,
                        ErrorKind::Other,
                        format!("reader task failed: {e}"),
                    )),
                    (rx, None),
                )),
            }
        },
    ))
}

/// Runs blocking work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> std::result::Result<T, SourceError>
where
    F: FnOnce() -> std::result::Result<T, SourceError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SourceError::Task(e.to_string()))?
}

/// A read-only file with its own cursor that can be cloned: clones share the open file but
/// not the position (reads are positional), so several ZIP readers can use one archive.
#[derive(Clone, Debug)]
pub(crate) struct SharedFile {
    file: Arc<File>,
    len: u64,
    pos: u64,
}

impl SharedFile {
    /// Opens the archive the user named (a link to it is followed); it must be a regular
    /// file (a FIFO or device is refused without blocking).
    pub(crate) fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = legacyflo_core::fsutil::open_regular(path)?;
        let len = file.metadata()?.len();
        Ok(SharedFile {
            file: Arc::new(file),
            len,
            pos: 0,
        })
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Reads one message from `reader` to its end through a [`SpillBuffer`]: at most
/// `limits.memory_threshold` bytes in memory, the rest in a temporary file, and never more
/// than `limits.max_bytes` (reading stops there). `announced` is the size the file or
/// archive claims, a hint only (a claim over the limit is refused before reading). `Err`
/// is the reason, for [`SourceEvent::Unreadable`].
pub(crate) fn read_bounded(
    mut reader: impl Read,
    limits: SpillLimits,
    announced: u64,
) -> std::result::Result<Bytes, String> {
    let too_large = |limit: u64| {
        format!("larger than the limit of {limit} bytes per message; not read past it")
    };
    let mut buf = match SpillBuffer::with_expected(limits, None, announced) {
        Ok(b) => b,
        Err(SpillError::TooLarge { limit }) => {
            return Err(format!(
                "its size is given as {announced} bytes, larger than the limit of {limit} bytes per message; not read"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        match buf.push(&chunk[..n]) {
            Ok(()) => {}
            Err(SpillError::TooLarge { limit }) => return Err(too_large(limit)),
            Err(e) => return Err(e.to_string()),
        }
    }
    buf.finish().map_err(|e| e.to_string())
}

/// The read size of [`read_bounded`].
const READ_CHUNK: usize = 256 * 1024;

/// Parses a decimal position or source id; `None` when it is not one.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_stop_at_the_limit_and_refuse_large_claims() {
        let limits = SpillLimits {
            max_bytes: 1000,
            memory_threshold: 100,
        };
        let ok = read_bounded(&[7u8; 1000][..], limits, 10).map(|b| b.len());
        assert_eq!(ok, Ok(1000), "spilled past the threshold, read back whole");
        let big = read_bounded(io::repeat(1).take(1 << 40), limits, 0);
        assert!(big.is_err_and(|e| e.contains("limit of 1000 bytes")));
        let claimed = read_bounded(&b"x"[..], limits, 5 << 30);
        assert!(claimed.is_err_and(|e| e.contains("given as 5368709120 bytes")));
    }
}
