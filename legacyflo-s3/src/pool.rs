//! [`BufferPool`]: large buffers allocated once and reused, such as the part buffers of one
//! multipart upload, so an upload of any size does not allocate (and free) a fresh
//! part-sized buffer per part. Freed part-sized blocks are what made the allocator keep memory
//! (glibc raises its mmap threshold to the size of a freed mapped block, after which
//! every block up to that size is carved from per-thread arenas that rarely shrink).
//!
//! A buffer is handed to the SDK as [`Bytes`] owning it ([`Bytes::from_owner`]); when the
//! SDK drops its last clone (the part was sent, or the request was dropped), the buffer
//! goes back to the pool.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::debug;

/// How long to wait for a buffer the SDK still holds after its part was acknowledged
/// before allocating one more (the connection task may drop the body a little after the
/// answer).
const LINGER: Duration = Duration::from_secs(2);

/// The buffers not in use.
#[derive(Debug, Default)]
struct Shared {
    free: Mutex<Vec<Vec<u8>>>,
    /// Most buffers kept (more that come back are freed).
    keep: usize,
    returned: Notify,
}

impl Shared {
    fn take(&self) -> Option<Vec<u8>> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        {
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            if free.len() < self.keep {
                free.push(buf);
            }
        }
        self.returned.notify_one();
    }
}

/// A part's bytes lent to the SDK; the buffer returns to its pool on drop.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<Shared>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

/// Reusable buffers of at least `capacity` bytes, at most `limit` of them allocated while
/// they come back in time: a buffer is filled, then [`lend`](Self::lend)t as [`Bytes`]
/// (to the SDK as a request body, and kept as slices as long as needed), and it comes
/// back when the last clone is dropped.
#[derive(Debug)]
pub struct BufferPool {
    shared: Arc<Shared>,
    capacity: usize,
    limit: usize,
    allocated: usize,
}

impl BufferPool {
    /// A pool of up to `limit` (at least 1) buffers of `capacity` bytes, none allocated
    /// yet.
    pub fn new(capacity: usize, limit: usize) -> BufferPool {
        let limit = limit.max(1);
        BufferPool {
            shared: Arc::new(Shared {
                keep: limit,
                ..Shared::default()
            }),
            capacity,
            limit,
            allocated: 0,
        }
    }

    /// `buf` as [`Bytes`]; the buffer returns to the pool when the last clone is dropped.
    /// A buffer smaller than the pool's capacity (not one of its own) is not kept.
    pub fn lend(&self, buf: Vec<u8>) -> Bytes {
        if buf.capacity() < self.capacity {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Lent {
            buf,
            pool: self.shared.clone(),
        })
    }

    /// An empty buffer of at least the pool's capacity: a free one, else a new one (even
    /// past the limit; only `limit` are kept when they come back).
    pub fn get(&mut self) -> Vec<u8> {
        self.try_get().unwrap_or_else(|| self.allocate())
    }

    /// A free buffer without waiting: one returned, or a new one while fewer than the
    /// limit exist.
    pub(crate) fn try_get(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.shared.take() {
            return Some(b);
        }
        if self.allocated < self.limit {
            return Some(self.allocate());
        }
        None
    }

    /// Waits for a buffer to come back; after [`LINGER`] allocates one more (so a clone the
    /// SDK keeps cannot stall the upload).
    pub(crate) async fn wait(&mut self) -> Vec<u8> {
        let shared = self.shared.clone();
        let notified = shared.returned.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(b) = shared.take() {
            return b;
        }
        if tokio::time::timeout(LINGER, notified).await.is_ok()
            && let Some(b) = shared.take()
        {
            return b;
        }
        debug!(
            message = "no part buffer came back in time; allocating one more",
            allocated = self.allocated
        );
        self.allocate()
    }

    fn allocate(&mut self) -> Vec<u8> {
        self.allocated += 1;
        Vec::with_capacity(self.capacity)
    }

    /// Buffers allocated so far.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_come_back_when_the_bytes_are_dropped() {
        let mut pool = BufferPool::new(16, 2);
        let mut a = pool.try_get().unwrap();
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        let bytes = pool.lend(a);
        let clone = bytes.clone();
        assert_eq!(&clone[..], b"hello");
        let b = pool.try_get().unwrap();
        assert_eq!(pool.allocated(), 2);
        assert!(pool.try_get().is_none());
        drop(bytes);
        assert!(pool.try_get().is_none());
        drop(clone);
        let again = pool.wait().await;
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty() && again.capacity() >= 16);
        assert_eq!(pool.allocated(), 2);
        drop((again, b));
        // Past the limit `get` allocates; only `limit` buffers are kept.
        let (x, y, z) = (pool.get(), pool.get(), pool.get());
        assert_eq!(pool.allocated(), 5);
        for v in [x, y, z] {
            drop(pool.lend(v));
        }
        assert_eq!(pool.shared.free.lock().unwrap().len(), 2);
    }
}
