//! [`PageBuf`]: a byte buffer placed in memory so that it can be written with `O_DIRECT`
//! straight from where it was filled (see [`super::out`]).

/// Alignment of direct writes: file offset, length and memory address.
pub const ALIGN: usize = 4096;

/// A fixed-length, zero-initialised byte buffer destined for file offset `at` (given at
/// creation), placed so that every byte whose file offset is a multiple of [`ALIGN`] also
/// has a memory address that is a multiple of [`ALIGN`]. The writer thread can then hand
/// the aligned middle of the buffer to the device without copying it into a staging area.
///
/// It derefs to its bytes (`len` of them); it never grows, so its memory never moves.
#[derive(Default)]
pub struct PageBuf {
    mem: Vec<u8>,
    off: usize,
    len: usize,
}

impl PageBuf {
    /// `len` zero bytes for file offset `at` (only `at % ALIGN` matters).
    pub fn zeroed(len: usize, at: u64) -> PageBuf {
        let mem = vec![0u8; len + ALIGN];
        let phase = (at % ALIGN as u64) as usize;
        let addr = mem.as_ptr().addr() % ALIGN;
        let off = (phase + ALIGN - addr) % ALIGN;
        PageBuf { mem, off, len }
    }

    /// A buffer for file offset `at` holding a copy of `bytes`.
    pub fn copy_of(bytes: &[u8], at: u64) -> PageBuf {
        let mut b = PageBuf::zeroed(bytes.len(), at);
        b.copy_from_slice(bytes);
        b
    }

    /// `at % ALIGN` for the file offsets this buffer is placed for: the distance of its
    /// first byte's address past a multiple of [`ALIGN`].
    pub fn phase(&self) -> usize {
        (self.mem.as_ptr().addr() + self.off) % ALIGN
    }

    /// Shortens the buffer to `len` bytes (no effect when it is not longer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl std::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.mem.get(self.off..self.off + self.len).unwrap_or(&[])
    }
}

impl std::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.mem
            .get_mut(self.off..self.off + self.len)
            .unwrap_or(&mut [])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Whatever the file offset, a byte at an aligned offset sits at an aligned address.
    #[test]
    fn aligned_offsets_are_aligned_in_memory() {
        for at in [0u64, 1, 0x400, 0x4400, 4095, 4096, 1 << 33] {
            for len in [0usize, 1, 100, 8192, 253_952] {
                let b = PageBuf::zeroed(len, at);
                assert_eq!(b.len(), len);
                assert_eq!(b.phase(), (at % ALIGN as u64) as usize);
                assert!(b.iter().all(|&x| x == 0));
                let first_aligned = (ALIGN - b.phase()) % ALIGN;
                if first_aligned < len {
                    assert_eq!(b[first_aligned..].as_ptr().addr() % ALIGN, 0);
                }
            }
        }
        let mut b = PageBuf::copy_of(b"hello", 3);
        assert_eq!(&b[..], b"hello");
        b.truncate(2);
        assert_eq!(&b[..], b"he");
        b.truncate(10);
        assert_eq!(&b[..], b"he");
        assert!(PageBuf::default().is_empty());
    }
}
