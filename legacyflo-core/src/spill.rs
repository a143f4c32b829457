//! Bounded message buffers that move to a temporary file past a threshold.
//!
//! A source that receives a message piece by piece (an IMAP literal, a ZIP entry being
//! inflated, an API download) collects it in a [`SpillBuffer`]: the first
//! [`SpillLimits::memory_threshold`] bytes are kept in memory; beyond that the bytes go to
//! an unnamed temporary file, and [`SpillBuffer::finish`] hands the message out as
//! [`Bytes`] backed by a read-only memory map of that file (the pages are the kernel's
//! page cache, reclaimable, not the process's heap). A message larger than
//! [`SpillLimits::max_bytes`] is refused with [`SpillError::TooLarge`] as soon as the
//! limit is crossed, so no input can make the buffer grow without bound.
//!
//! Nothing here allocates from a size a peer announced: [`SpillBuffer::with_expected`]
//! takes an announced size only as a hint, reserving at most the memory threshold.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Limits of one message buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpillLimits {
    /// The largest message accepted, in bytes (default 2 GiB, the per-message limit).
    pub max_bytes: u64,
    /// Messages up to this size stay in memory; larger ones are written to a temporary
    /// file (default 32 MiB).
    pub memory_threshold: usize,
}

impl SpillLimits {
    /// The default largest message: 2 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
    /// The default in-memory threshold: 32 MiB.
    pub const DEFAULT_MEMORY_THRESHOLD: usize = 32 << 20;
}

impl Default for SpillLimits {
    fn default() -> Self {
        SpillLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            memory_threshold: Self::DEFAULT_MEMORY_THRESHOLD,
        }
    }
}

/// Why a buffer could not take or give its bytes.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The message is larger than [`SpillLimits::max_bytes`].
    #[error("the message is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was crossed.
        limit: u64,
    },
    /// The temporary file could not be written or mapped.
    #[error("temporary file for a large message in {dir}: {source}")]
    Io {
        /// The directory of the temporary file.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A message being collected; see the [module docs](self).
#[derive(Debug)]
pub struct SpillBuffer {
    limits: SpillLimits,
    dir: Option<PathBuf>,
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
}

impl SpillBuffer {
    /// An empty buffer whose temporary file (if one is needed) goes to `dir`, or to the
    /// system's temporary directory when `None`.
    pub fn new(limits: SpillLimits, dir: Option<&Path>) -> Self {
        SpillBuffer {
            limits,
            dir: dir.map(Path::to_path_buf),
            memory: Vec::new(),
            file: None,
            len: 0,
        }
    }

    /// Like [`new`](Self::new), reserving memory for `expected` bytes, an announced size
    /// that is only a hint: at most the memory threshold is reserved, whatever it says.
    /// An announced size over the limit is refused at once.
    pub fn with_expected(
        limits: SpillLimits,
        dir: Option<&Path>,
        expected: u64,
    ) -> Result<Self, SpillError> {
        if expected > limits.max_bytes {
            return Err(SpillError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        let mut b = Self::new(limits, dir);
        let reserve = usize::try_from(expected)
            .unwrap_or(usize::MAX)
            .min(limits.memory_threshold);
        b.memory.reserve_exact(reserve);
        Ok(b)
    }

    /// Bytes taken so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was taken yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the bytes went to a temporary file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    fn io(&self, source: io::Error) -> SpillError {
        SpillError::Io {
            dir: self.dir(),
            source,
        }
    }

    /// Appends `data`. Fails with [`SpillError::TooLarge`] when the total would pass the
    /// limit (nothing of `data` is kept then; the buffer should be dropped).
    pub fn push(&mut self, data: &[u8]) -> Result<(), SpillError> {
        let new_len = self.len.saturating_add(data.len() as u64);
        if new_len > self.limits.max_bytes {
            return Err(SpillError::TooLarge {
                limit: self.limits.max_bytes,
            });
        }
        if self.file.is_none() && new_len > self.limits.memory_threshold as u64 {
            let file = tempfile::tempfile_in(self.dir()).map_err(|e| self.io(e))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            w.write_all(&self.memory).map_err(|e| self.io(e))?;
            self.memory = Vec::new();
            self.file = Some(w);
        }
        match self.file.as_mut() {
            Some(w) => {
                if let Err(e) = w.write_all(data) {
                    return Err(self.io(e));
                }
            }
            None => self.memory.extend_from_slice(data),
        }
        self.len = new_len;
        Ok(())
    }

    /// The message's bytes: from memory, or a read-only map of the temporary file.
    pub fn finish(self) -> Result<Bytes, SpillError> {
        let dir = self.dir();
        let Some(w) = self.file else {
            return Ok(Bytes::from(self.memory));
        };
        let io = |source| SpillError::Io {
            dir: dir.clone(),
            source,
        };
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        // SAFETY: the file is an unnamed temporary file (`tempfile_in` unlinks it at once)
        // that only this buffer had a handle to, and that handle is dropped here after
        // the mapping: no one can truncate or modify it while the map lives, which is
        // what `Mmap::map` requires for its bytes to stay valid and unchanging.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        drop(file);
        Ok(Bytes::from_owner(map))
    }
}

impl Write for SpillBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64, threshold: usize) -> SpillLimits {
        SpillLimits {
            max_bytes: max,
            memory_threshold: threshold,
        }
    }

    #[test]
    fn small_stays_in_memory() -> Result<(), SpillError> {
        let mut b = SpillBuffer::new(limits(100, 10), None);
        b.push(b"hello")?;
        b.push(b"")?;
        assert!(!b.spilled());
        assert_eq!(b.len(), 5);
        assert_eq!(&b.finish()?[..], b"hello");
        Ok(())
    }

    #[test]
    fn large_spills_and_reads_back_exactly() -> Result<(), SpillError> {
        let dir = tempfile::tempdir().map_err(|e| SpillError::Io {
            dir: PathBuf::new(),
            source: e,
        })?;
        let mut b = SpillBuffer::new(limits(1 << 20, 1000), Some(dir.path()));
        let mut want = Vec::new();
        for i in 0..300u32 {
            let piece = i.to_le_bytes();
            b.push(&piece)?;
            want.extend_from_slice(&piece);
        }
        assert!(b.spilled());
        let got = b.finish()?;
        assert_eq!(&got[..], &want[..]);
        // the file is unnamed: nothing is left in the directory
        assert_eq!(
            std::fs::read_dir(dir.path()).map(|d| d.count()).ok(),
            Some(0)
        );
        Ok(())
    }

    #[test]
    fn refuses_past_the_limit_and_announced_sizes_over_it() {
        let mut b = SpillBuffer::new(limits(8, 4), None);
        assert!(b.push(b"12345678").is_ok());
        assert!(matches!(
            b.push(b"9"),
            Err(SpillError::TooLarge { limit: 8 })
        ));
        assert!(matches!(
            SpillBuffer::with_expected(limits(8, 4), None, 99_999_999_999),
            Err(SpillError::TooLarge { limit: 8 })
        ));
    }

    #[test]
    fn an_announced_size_reserves_at_most_the_threshold() -> Result<(), SpillError> {
        let b = SpillBuffer::with_expected(limits(u64::MAX, 4096), None, u64::MAX - 1)?;
        assert!(b.memory.capacity() <= 8192);
        Ok(())
    }
}
