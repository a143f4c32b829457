//! The threads that compress ZIP entries: a fixed set for the whole process (two per
//! core, as many as one pipeline compresses at once), not the runtime's blocking pool. The blocking pool starts a thread whenever none
//! is idle at that instant, so a steady stream of short jobs spreads over many threads,
//! and the allocator gives each new thread its own arena (up to eight per core), each
//! keeping megabytes of freed entry buffers; a fixed set keeps the memory of the
//! compression in a few arenas.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::oneshot;
use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// Most compression threads.
const MAX_THREADS: usize = 16;

/// The job queue of the compression threads; `None` when none could be started.
fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    static QUEUE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let n = (2 * std::thread::available_parallelism().map_or(1, usize::from))
                .clamp(2, MAX_THREADS);
            let mut started = 0;
            for i in 0..n {
                let rx = rx.clone();
                match std::thread::Builder::new()
                    .name(format!("legacyflo-zip-{i}"))
                    .spawn(move || work(&rx))
                {
                    Ok(_) => started += 1,
                    Err(e) => {
                        warn!(message = "cannot start a compression thread", error = %e);
                    }
                }
            }
            (started > 0).then(|| Mutex::new(tx))
        })
        .as_ref()
}

/// A compression thread: runs jobs until the queue is gone. A job that panics only loses
/// its result (its caller sees the channel closed).
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            rx.recv()
        };
        let Ok(job) = job else {
            return;
        };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Runs `f` on a compression thread; its result arrives on the receiver (closed without
/// a value if `f` panicked). A job whose receiver is dropped before it starts is skipped.
/// Without compression threads it runs on the runtime's blocking pool.
pub(crate) fn spawn<T, F>(f: F) -> oneshot::Receiver<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    let job = match queue() {
        Some(q) => match q.lock().unwrap_or_else(PoisonError::into_inner).send(job) {
            Ok(()) => return rx,
            Err(e) => e.0,
        },
        None => job,
    };
    drop(tokio::task::spawn_blocking(job));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_come_back_and_panics_are_contained() {
        let a = spawn(|| 6 * 7);
        let b = spawn(|| -> u32 { panic!("boom") });
        let c = spawn(|| "after");
        assert_eq!(a.await.unwrap(), 42);
        assert!(b.await.is_err());
        assert_eq!(c.await.unwrap(), "after");
    }
}
