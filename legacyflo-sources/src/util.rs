//! Helpers shared by the file sources: blocking readers behind async streams, and a file
//! handle that many ZIP readers can share.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

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
    pub(crate) fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = File::open(path)?;
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

/// Parses a decimal position or source id; `None` when it is not one.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
