//! [`Live`]: builds the PST on its own thread while the run goes on, so that reading the
//! source and writing the PST overlap.
//!
//! The thread first replays the spool's committed records (nothing on a new spool; the
//! committed prefix after a resume or an abort), then takes every record `write` spools,
//! in the same order. Records in flight are bounded by bytes ([`IN_FLIGHT`]), so memory
//! stays bounded when the PST writer is the slower stage. The spool stays the durable
//! copy: if the thread fails, or the run aborts to its last commit, the live build is
//! dropped and `finish` builds the PST from the spool instead.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use legacyflo_core::{Output, Settled};
use legacyflo_pst::WriterOptions;
use tracing::{debug, warn};

use super::BACKEND;
use super::build::Builder;
use super::spool::RecordMeta;
use crate::error::{SinkError, SinkResult};

/// Bytes of messages handed to the thread and not yet stored (at least one message is
/// always let through, whatever its size).
const IN_FLIGHT: u64 = 32 << 20;

/// Bytes in flight, shared with the thread.
#[derive(Debug, Default)]
struct Gauge {
    bytes: Mutex<u64>,
    changed: Condvar,
}

impl Gauge {
    /// Waits until `n` more bytes fit (or nothing is in flight, or the thread is gone),
    /// then counts them.
    fn reserve(&self, n: u64, gone: &AtomicBool) {
        let Ok(mut cur) = self.bytes.lock() else {
            return;
        };
        while *cur > 0 && *cur + n > IN_FLIGHT && !gone.load(Ordering::Acquire) {
            cur = match self.changed.wait(cur) {
                Ok(c) => c,
                Err(_) => return,
            };
        }
        *cur += n;
    }

    fn release(&self, n: u64) {
        if let Ok(mut cur) = self.bytes.lock() {
            *cur = cur.saturating_sub(n);
        }
        self.changed.notify_all();
    }
}

/// The state the sink and the thread share.
#[derive(Debug, Default)]
struct Shared {
    gauge: Gauge,
    /// Set by the sink to stop the thread early (abort).
    cancel: AtomicBool,
    /// Set by the thread when it ends (so that nobody waits for it).
    gone: AtomicBool,
}

/// A PST being built on its own thread.
#[derive(Debug)]
pub(super) struct Live {
    tx: Option<Sender<(RecordMeta, Bytes)>>,
    thread: Option<JoinHandle<SinkResult<Builder>>>,
    shared: Arc<Shared>,
}

impl Live {
    /// Starts the thread building `dest` (as `<dest>.partial`), first from the spool at
    /// `spool` up to its committed length `committed`.
    pub(super) fn start(
        dest: &Path,
        options: &WriterOptions,
        spool: &Path,
        committed: u64,
    ) -> SinkResult<Live> {
        let (tx, rx) = channel();
        let shared = Arc::new(Shared::default());
        let (dest, options, spool) = (dest.to_path_buf(), options.clone(), spool.to_path_buf());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pst-build".into())
            .spawn(move || {
                let r = run(&dest, &options, &spool, committed, &rx, &s);
                s.gone.store(true, Ordering::Release);
                s.gauge.changed.notify_all();
                r
            })
            .map_err(|e| SinkError::io(BACKEND, "start the PST build thread", e))?;
        Ok(Live {
            tx: Some(tx),
            thread: Some(thread),
            shared,
        })
    }

    /// Hands one spooled record to the thread (waiting while too many bytes are in
    /// flight). `false`: the thread has ended (an error); the caller drops this build.
    pub(super) fn send(&mut self, meta: RecordMeta, raw: Bytes) -> bool {
        if self.shared.gone.load(Ordering::Acquire) {
            return false;
        }
        self.shared
            .gauge
            .reserve(raw.len() as u64, &self.shared.gone);
        match &self.tx {
            Some(tx) => tx.send((meta, raw)).is_ok(),
            None => false,
        }
    }

    /// Waits for the thread to store everything sent, then completes the PST (indexes,
    /// final names). An error of the thread is returned as it is.
    pub(super) fn finish(mut self) -> SinkResult<(Vec<Output>, Vec<Settled>)> {
        self.tx = None;
        let builder = self.join()?;
        builder.finish()
    }

    /// Stops the thread and drops what it built (the next build replaces the partial
    /// files).
    pub(super) fn cancel(mut self) {
        self.shared.cancel.store(true, Ordering::Release);
        self.tx = None;
        if let Err(e) = self.join() {
            debug!(message = "cancelled PST build ended with an error", error = %e);
        }
    }

    fn join(&mut self) -> SinkResult<Builder> {
        let Some(thread) = self.thread.take() else {
            return Err(SinkError::misuse(
                BACKEND,
                "the PST build was already joined",
            ));
        };
        thread
            .join()
            .map_err(|_| SinkError::misuse(BACKEND, "the PST build thread panicked"))?
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shared.cancel.store(true, Ordering::Release);
            self.tx = None;
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn run(
    dest: &Path,
    options: &WriterOptions,
    spool: &Path,
    committed: u64,
    rx: &Receiver<(RecordMeta, Bytes)>,
    shared: &Shared,
) -> SinkResult<Builder> {
    let cancelled = || shared.cancel.load(Ordering::Acquire);
    let mut builder = Builder::create(dest, options)?;
    if !builder.replay(spool, committed, cancelled)? {
        return Ok(builder);
    }
    while let Ok((meta, raw)) = rx.recv() {
        let n = raw.len() as u64;
        let r = if cancelled() {
            Ok(())
        } else {
            builder.add(meta, raw)
        };
        shared.gauge.release(n);
        if let Err(e) = r {
            warn!(message = "live PST build failed; the PST will be built from the spool at finish", error = %e);
            return Err(e);
        }
    }
    Ok(builder)
}
