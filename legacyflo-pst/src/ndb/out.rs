//! The file side of the NDB writer: the byte stream of a PST, written sequentially from
//! offset 0 by a writer thread, so that the thread building blocks never waits for the disk.
//!
//! The writer hands over whole buffers (AMap ranges, no copy) with the blocks in them still
//! to be sealed ([`Seal`]: permute-encoded where asked, then their CRC written into the
//! trailer), so that this byte-wise work runs beside the building of the next blocks on a
//! second core. Buffers are [`PageBuf`]s, placed in memory so that their bytes at 4 KiB
//! file offsets sit at 4 KiB addresses: the thread writes the aligned middle of each buffer
//! straight from where it was filled, gathering about [`BATCH`] bytes of consecutive
//! buffers into one vectored `O_DIRECT` write (`pwritev`) where the file system allows it
//! (Linux). Only the 4 KiB blocks that straddle two buffers are copied, into small aligned
//! edge blocks. The data goes to the device without a copy into the page cache, without
//! filling the cache with a file nobody reads back soon, and without one long flush at the
//! end. Where direct I/O is refused (tmpfs, other systems, `direct_io` off), the thread
//! writes each buffer through the page cache as it comes. The last partial 4 KiB and the
//! header area are written through the page cache at [`RangeOut::finish`], which then syncs
//! the file.
//!
//! Buffers in flight are bounded: [`QUEUE`] queued plus those of the batch being gathered.

use std::fs::File;
use std::io::{self, IoSlice};
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::thread::JoinHandle;

pub use super::page_buf::{ALIGN, PageBuf};

/// Buffers queued for the writer thread before [`RangeOut::put`] waits: AMap ranges of
/// 248 KiB come to about 3 MiB, more than a batch, so the writer keeps building blocks
/// while a batch is on its way to the device.
pub const QUEUE: usize = 12;
/// Bytes gathered before one vectored direct write. Large, because on a virtual machine
/// every write that reaches the device costs an exit to the host (2 MiB: 500 per GB).
pub const BATCH: usize = 2 << 20;

/// A block in a buffer handed to [`RangeOut::put`] whose trailer still lacks its CRC:
/// `len` data bytes at `pos`, permute-encoded first when `encode`. The CRC goes into the
/// trailer of the 64-aligned block (bytes 4..8 of its last 16).
#[derive(Clone, Copy, Debug)]
pub struct Seal {
    /// Offset of the block in the buffer.
    pub pos: u32,
    /// Data bytes (at most 8176).
    pub len: u16,
    /// Permute-encode the data before the CRC.
    pub encode: bool,
}

impl Seal {
    /// Encodes the block's data when asked and writes its CRC into its trailer; a block
    /// that does not lie inside `buf` is left alone (the writer only makes ones that do).
    fn apply(self, buf: &mut [u8]) {
        let (pos, len) = (self.pos as usize, usize::from(self.len));
        let trailer = pos + (len + 16).next_multiple_of(64) - 16;
        let Some(b) = buf.get_mut(pos..trailer + 16) else {
            return;
        };
        if self.encode {
            super::crypt::encode(&mut b[..len]);
        }
        let c = super::crc::crc(&b[..len]);
        let t = trailer - pos;
        b[t + 4..t + 8].copy_from_slice(&c.to_le_bytes());
    }
}

type Batch = (PageBuf, Vec<Seal>);

/// Sends buffers to the writer thread and gets them back for reuse.
pub struct RangeOut {
    tx: Option<SyncSender<Batch>>,
    back: Receiver<Batch>,
    thread: Option<JoinHandle<io::Result<Tail>>>,
    file: File,
    pos: u64,
    /// Seal in the caller's thread: when the process may run on one CPU only, the writer
    /// thread would just take turns with it, and each hand-over costs a switch.
    seal_here: bool,
}

/// What the thread leaves for [`RangeOut::finish`]: the unaligned end of the stream.
struct Tail {
    at: u64,
    bytes: Vec<u8>,
    direct: bool,
}

impl RangeOut {
    /// Starts the writer thread for `file` (created empty at `path`, opened for writing).
    /// With `direct_io`, the thread opens `path` a second time with `O_DIRECT` (Linux) and
    /// falls back to `file` when that is refused.
    pub fn new(file: File, path: &Path, direct_io: bool) -> io::Result<RangeOut> {
        let direct = if direct_io { open_direct(path) } else { None };
        let plain = file.try_clone()?;
        let (tx, rx) = sync_channel::<Batch>(QUEUE);
        let (back_tx, back) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pst-write".into())
            .spawn(move || run(rx, back_tx, direct, plain))?;
        Ok(RangeOut {
            tx: Some(tx),
            back,
            thread: Some(thread),
            file,
            pos: 0,
            seal_here: std::thread::available_parallelism().is_ok_and(|n| n.get() == 1),
        })
    }

    /// Whether [`RangeOut::put`] applies the seals in the caller's thread (the process may
    /// run on one CPU only); the caller may then as well encode as it copies.
    pub fn seals_here(&self) -> bool {
        self.seal_here
    }

    /// Bytes handed over so far (the next byte's file offset).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Hands `buf` (the next bytes of the file) to the writer thread, which first applies
    /// `seals` to it, and returns a buffer of the same length placed for the next position
    /// to fill next, with an empty list for its seals: ones the thread is done with, or new
    /// ones. A buffer placed for another offset ([`PageBuf::phase`]) is copied once into one
    /// placed right. Fails with the thread's error once a write has failed.
    pub fn put(&mut self, buf: PageBuf, mut seals: Vec<Seal>) -> io::Result<(PageBuf, Vec<Seal>)> {
        let len = buf.len();
        let mut buf = if buf.phase() == (self.pos % ALIGN as u64) as usize {
            buf
        } else {
            PageBuf::copy_of(&buf, self.pos)
        };
        if self.seal_here {
            for s in seals.drain(..) {
                s.apply(&mut buf);
            }
        }
        self.pos += len as u64;
        let sent = match &self.tx {
            Some(tx) => tx.send((buf, seals)).is_ok(),
            None => false,
        };
        if !sent {
            // The thread stopped: its error says why.
            return Err(self.stop().err().unwrap_or_else(stopped));
        }
        let phase = (self.pos % ALIGN as u64) as usize;
        match self.back.try_recv() {
            Ok((b, mut s)) if b.len() == len && b.phase() == phase => {
                s.clear();
                Ok((b, s))
            }
            _ => Ok((PageBuf::zeroed(len, self.pos), Vec::new())),
        }
    }

    /// Waits for the thread, writes its unaligned tail, then `head` at offset 0 (the header
    /// area, through the page cache) and syncs the file. Returns whether every aligned write
    /// went direct.
    pub fn finish(mut self, head: &[u8]) -> io::Result<bool> {
        let tail = self.stop()?;
        write_at(&self.file, &tail.bytes, tail.at)?;
        write_at(&self.file, head, 0)?;
        self.file.sync_all()?;
        tracing::debug!(direct = tail.direct, bytes = self.pos, "PST file written");
        Ok(tail.direct)
    }

    /// Closes the queue and joins the thread (every queued buffer is written first).
    fn stop(&mut self) -> io::Result<Tail> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("PST writer thread panicked"))),
            None => Err(stopped()),
        }
    }
}

impl Drop for RangeOut {
    /// Joins the thread, so that no write to this file can follow the drop (a new writer
    /// may truncate and reuse the same path right after).
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn stopped() -> io::Error {
    io::Error::other("PST writer thread stopped")
}

/// The thread: seals each buffer, then writes it through the page cache as it comes, or
/// gathers it into the batch of direct writes.
fn run(
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    direct: Option<File>,
    plain: File,
) -> io::Result<Tail> {
    let mut g = Gather::new(direct, plain, back);
    for (mut buf, seals) in rx {
        for s in &seals {
            s.apply(&mut buf);
        }
        g.push(buf, seals)?;
    }
    g.finish()
}

/// One piece of the batch, in file order: the middle of a held buffer, or an edge block.
enum Part {
    Held {
        index: usize,
        start: usize,
        end: usize,
    },
    Edge(usize),
}

/// The writer thread's state: the stream position, the batch being gathered for one
/// vectored direct write, and the 4 KiB block now being completed across buffers.
struct Gather {
    direct: Option<File>,
    plain: File,
    back: Sender<Batch>,
    /// File offset of the batch's first byte (aligned while writing direct).
    at: u64,
    /// Bytes in the batch.
    pending: usize,
    parts: Vec<Part>,
    held: Vec<Batch>,
    /// Full edge blocks of the batch, and spare ones.
    edges: Vec<PageBuf>,
    spare: Vec<PageBuf>,
    /// The block straddling into the next buffer: its first `edge_len` bytes are known.
    edge: PageBuf,
    edge_len: usize,
}

impl Gather {
    fn new(direct: Option<File>, plain: File, back: Sender<Batch>) -> Gather {
        Gather {
            direct,
            plain,
            back,
            at: 0,
            pending: 0,
            parts: Vec::new(),
            held: Vec::new(),
            edges: Vec::new(),
            spare: Vec::new(),
            edge: PageBuf::zeroed(ALIGN, 0),
            edge_len: 0,
        }
    }

    /// Takes the next buffer of the stream.
    fn push(&mut self, buf: PageBuf, seals: Vec<Seal>) -> io::Result<()> {
        if self.direct.is_none() {
            write_at(&self.plain, &buf, self.at)?;
            self.at += buf.len() as u64;
            // The receiver is gone only when the writer is finishing: nothing to reuse then.
            let _ = self.back.send((buf, seals));
            return Ok(());
        }
        // Complete the straddling block with the buffer's head.
        let mut i = 0;
        if self.edge_len > 0 {
            let n = (ALIGN - self.edge_len).min(buf.len());
            self.edge[self.edge_len..self.edge_len + n].copy_from_slice(&buf[..n]);
            self.edge_len += n;
            i = n;
            if self.edge_len == ALIGN {
                let next = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| PageBuf::zeroed(ALIGN, 0));
                self.edges.push(std::mem::replace(&mut self.edge, next));
                self.parts.push(Part::Edge(self.edges.len() - 1));
                self.pending += ALIGN;
                self.edge_len = 0;
            }
        }
        // The aligned middle goes as it is (`put` placed the buffer for its offset), the
        // rest starts the next straddling block.
        let body = if self.edge_len == 0 {
            (buf.len() - i) / ALIGN * ALIGN
        } else {
            0
        };
        if body > 0 {
            self.parts.push(Part::Held {
                index: self.held.len(),
                start: i,
                end: i + body,
            });
            self.pending += body;
        }
        let rest = buf.get(i + body..).unwrap_or(&[]);
        if !rest.is_empty() {
            self.edge[..rest.len()].copy_from_slice(rest);
            self.edge_len = rest.len();
        }
        if body > 0 {
            self.held.push((buf, seals));
        } else {
            let _ = self.back.send((buf, seals));
        }
        if self.pending >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the batch (direct; through the page cache once direct I/O is refused) and
    /// returns its buffers for reuse.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending > 0 {
            let slices: Vec<&[u8]> = self
                .parts
                .iter()
                .map(|p| match p {
                    Part::Held { index, start, end } => self
                        .held
                        .get(*index)
                        .and_then(|(b, _)| b.get(*start..*end))
                        .unwrap_or(&[]),
                    Part::Edge(k) => self.edges.get(*k).map_or(&[][..], |e| &e[..]),
                })
                .collect();
            write_batch(&mut self.direct, &self.plain, &slices, self.at)?;
            self.at += self.pending as u64;
            self.pending = 0;
        }
        self.parts.clear();
        self.spare.append(&mut self.edges);
        for b in self.held.drain(..) {
            let _ = self.back.send(b);
        }
        if self.direct.is_none() && self.edge_len > 0 {
            // Direct I/O was refused: from here on every byte goes through the page cache
            // as it comes, the known start of the straddling block first.
            write_at(&self.plain, &self.edge[..self.edge_len], self.at)?;
            self.at += self.edge_len as u64;
            self.edge_len = 0;
        }
        Ok(())
    }

    /// Writes what is gathered; leaves the unaligned end to [`RangeOut::finish`].
    fn finish(mut self) -> io::Result<Tail> {
        self.flush()?;
        Ok(Tail {
            at: self.at,
            bytes: self.edge.get(..self.edge_len).unwrap_or(&[]).to_vec(),
            direct: self.direct.is_some(),
        })
    }
}

/// Writes `parts` (consecutive, each a multiple of [`ALIGN`] at an aligned address) at the
/// aligned offset `at`: one vectored direct write where possible; a refusal of direct I/O
/// (`EINVAL`) switches the rest of the file to the page cache.
fn write_batch(
    direct: &mut Option<File>,
    plain: &File,
    parts: &[&[u8]],
    at: u64,
) -> io::Result<()> {
    if let Some(d) = direct {
        match write_all_vectored_at(d, parts, at) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                tracing::debug!(error = %e, "direct I/O refused; writing through the page cache");
                *direct = None;
            }
            Err(e) => return Err(e),
        }
    }
    write_all_vectored_at(plain, parts, at)
}

/// Writes all of `parts` in order at `at`, resuming after short writes.
#[cfg(target_os = "linux")]
fn write_all_vectored_at(f: &File, parts: &[&[u8]], at: u64) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut done = 0usize;
    while done < total {
        // The slices from byte `done` on.
        let mut skip = done;
        let mut v: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len());
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            v.push(IoSlice::new(p.get(skip..).unwrap_or(&[])));
            skip = 0;
        }
        match rustix::io::pwritev(f, &v, at + done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn write_all_vectored_at(f: &File, parts: &[&[u8]], at: u64) -> io::Result<()> {
    let mut off = at;
    for p in parts {
        write_at(f, p, off)?;
        off += p.len() as u64;
    }
    Ok(())
}

#[cfg(unix)]
fn write_at(f: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    f.write_all_at(bytes, at)
}

#[cfg(not(unix))]
fn write_at(f: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = f;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(bytes)
}

/// `path` opened for writing with `O_DIRECT`, or `None` where that is refused.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Some(File::from(fd)),
        Err(e) => {
            tracing::debug!(error = %e, "O_DIRECT refused; writing through the page cache");
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file equals the stream whatever the buffer sizes, direct or not, and the head
    /// lands at offset 0. With `misplace`, every buffer is placed for the wrong offset
    /// (so `put` must copy it into a well-placed one). Returns whether the writes went
    /// direct.
    fn roundtrip(dir: &Path, direct_io: bool, misplace: bool, sizes: &[usize]) -> bool {
        let path = dir.join(format!("t-{direct_io}-{misplace}-{}.bin", sizes.len()));
        let file = File::create(&path).unwrap();
        let mut out = RangeOut::new(file, &path, direct_io).unwrap();
        let mut expect = Vec::new();
        let mut next = 0u8;
        for &n in sizes {
            let mut b = PageBuf::zeroed(n, out.position() + u64::from(misplace));
            for x in b.iter_mut() {
                *x = next;
                next = next.wrapping_mul(31).wrapping_add(7);
            }
            expect.extend_from_slice(&b);
            let (again, _) = out.put(b, Vec::new()).unwrap();
            assert_eq!(again.len(), n);
            assert_eq!(again.phase() as u64, out.position() % ALIGN as u64);
        }
        assert_eq!(out.position(), expect.len() as u64);
        let head = [0xAB; 100];
        let n = head.len().min(expect.len());
        expect[..n].copy_from_slice(&head[..n]);
        let direct = out.finish(&head[..n]).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "file differs from the stream");
        assert!(direct_io || !direct);
        direct
    }

    /// On the repository's file system (the one PSTs are written to in the tests): where it
    /// takes `O_DIRECT`, every aligned write must go direct (a misaligned one would be
    /// refused and fall back, failing this).
    #[test]
    fn stream_is_written_exactly_direct_and_buffered() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let takes_direct = open_direct(&dir.path().join("probe")).is_some()
            || File::create(dir.path().join("probe"))
                .ok()
                .and_then(|_| open_direct(&dir.path().join("probe")))
                .is_some();
        for direct in [true, false] {
            for misplace in [false, true] {
                let cases: [&[usize]; 6] = [
                    &[0x4400, 253_952, 253_952, 253_952, 253_952, 7],
                    &[1, 4095, 4097, BATCH, BATCH + 1, 3 * BATCH - 5],
                    &[100],
                    &[BATCH],
                    &[0, 10, 0, 4086, 8192, 1, 1, 4094, 4096 * 600 + 3],
                    &[ALIGN - 1; 700],
                ];
                for sizes in cases {
                    let went = roundtrip(dir.path(), direct, misplace, sizes);
                    assert_eq!(went, direct && takes_direct, "sizes {sizes:?}");
                }
            }
        }
    }

    /// Seals encode and checksum exactly the blocks named, and nothing else.
    #[test]
    fn seals_encode_and_checksum_their_blocks() {
        let mut buf = vec![7u8; 1024];
        let data: Vec<u8> = (0..100u8).collect();
        buf[64..164].copy_from_slice(&data);
        Seal {
            pos: 64,
            len: 100,
            encode: true,
        }
        .apply(&mut buf);
        let mut enc = data.clone();
        crate::ndb::crypt::encode(&mut enc);
        assert_eq!(&buf[64..164], &enc[..]);
        let t = 64 + 128 - 16;
        let crc = u32::from_le_bytes([buf[t + 4], buf[t + 5], buf[t + 6], buf[t + 7]]);
        assert_eq!(crc, crate::ndb::crc::crc(&enc));
        assert!(buf[..64].iter().all(|&b| b == 7) && buf[192..].iter().all(|&b| b == 7));
        Seal {
            pos: 1000,
            len: 100,
            encode: true,
        }
        .apply(&mut buf);
        assert!(
            buf[192..].iter().all(|&b| b == 7),
            "a seal past the end wrote"
        );
    }

    /// A refused direct write (here: misaligned, `EINVAL` on ext4) falls back to the page
    /// cache for the rest of the file, losing nothing.
    #[cfg(target_os = "linux")]
    #[test]
    fn refused_direct_write_falls_back() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("fallback.bin");
        let plain = File::create(&path).unwrap();
        let Some(d) = open_direct(&path) else {
            panic!("the repository's file system does not take O_DIRECT");
        };
        let mut direct = Some(d);
        let data: Vec<u8> = (0..8193u32).map(|i| (i % 251) as u8).collect();
        write_batch(&mut direct, &plain, &[&data[1..4097], &data[4097..]], 1).unwrap();
        assert!(
            direct.is_none(),
            "a misaligned direct write was not refused"
        );
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[1..], &data[1..]);
    }

    /// A write error reaches the caller (here: the file is read-only for the thread).
    #[test]
    fn write_error_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.bin");
        drop(File::create(&path).unwrap());
        let ro = File::open(&path).unwrap();
        let mut out = RangeOut::new(ro, &path, false).unwrap();
        let mut failed = false;
        for _ in 0..(QUEUE + 8) {
            if out.put(PageBuf::zeroed(BATCH, 0), Vec::new()).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed || out.finish(&[]).is_err());
    }
}
