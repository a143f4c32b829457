//! The engine: runs a request from a [`Source`] into a [`Sink`] with filters, concurrency
//! across folders, retries, checkpoints, progress events and a report.
//!
//! # How a run goes
//! 1. Saved state is loaded (if a [`StateStore`] is given). A finished run is reported
//!    again without work.
//! 2. The source's folders are listed and the request's folder filter applied.
//! 3. The sink is opened with its saved state, which restores its output to the last
//!    commit (on a resume, while step 2 runs: both usually wait on a server).
//! 4. Up to `jobs` folders are read at once, each from its checkpoint. Their messages are
//!    written to the sink in arrival order (one writer; ZIP and PST are single streams).
//! 5. Every `commit_every_messages` messages, `commit_every_bytes` bytes or
//!    `commit_interval`, the sink commits and **only then** are the folder checkpoints
//!    advanced and the state saved, in one atomic write. A crash at any point therefore
//!    resumes from a state where the sink and the checkpoints agree: nothing lost,
//!    nothing twice.
//! 6. At the end the sink finishes its outputs and the state is marked finished.

pub mod report;
mod retry;
mod run;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

pub use retry::RetryPolicy;

use crate::error::Error;
use crate::filter::Filter;
use crate::message::FolderPath;
use crate::sink::Sink;
use crate::source::Source;
use report::Report;
use state::StateStore;

/// Tunables of a run.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Folders read at once (at least 1). Default 4.
    pub jobs: usize,
    /// List folders and count messages only; write nothing. Default false.
    pub dry_run: bool,
    /// Commit after this many messages. Default 2,000.
    pub commit_every_messages: u64,
    /// Commit after this many bytes. Default 256 MiB.
    pub commit_every_bytes: u64,
    /// Commit at least this often while writing. Default 30 s.
    pub commit_interval: Duration,
    /// Retries of temporary errors, the only retries of a run (sources and sinks fail
    /// fast and never retry inside): a folder reader calls its source's
    /// [`stream`](crate::Source::stream) again up to `max_retries` times in a row without
    /// progress, then the run fails with that error; a sink error rewinds to the last
    /// commit and is retried up to `max_retries` times in a row without a new commit. The
    /// two budgets never multiply: a reader that gave up is not restarted by the sink's
    /// retries.
    pub retry: RetryPolicy,
    /// Messages buffered between readers and the writer. Default 64.
    pub buffer: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            jobs: 4,
            dry_run: false,
            commit_every_messages: 2_000,
            commit_every_bytes: 256 << 20,
            commit_interval: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            buffer: 64,
        }
    }
}

/// Something that happened during a run, for progress displays.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Folders are known; `messages` is the total when the source knows it.
    Started {
        /// Folders selected.
        folders: usize,
        /// Messages expected, when known.
        messages: Option<u64>,
        /// Messages already done by an earlier run.
        already_done: u64,
    },
    /// A folder began.
    FolderStarted(FolderPath),
    /// A message was stored (or found already stored).
    Message {
        /// Its folder.
        folder: FolderPath,
        /// Its size.
        bytes: u64,
    },
    /// A message was skipped.
    Skipped {
        /// Its folder.
        folder: FolderPath,
        /// Why.
        reason: String,
    },
    /// A folder is complete.
    FolderDone(FolderPath),
    /// The sink committed and the checkpoint advanced.
    Committed {
        /// Messages durable so far in this request.
        messages: u64,
    },
    /// A temporary error; retrying after `delay`.
    Retrying {
        /// What failed.
        error: String,
        /// Retry number.
        attempt: u32,
        /// Wait before the retry.
        delay: Duration,
    },
}

/// Receives progress events; called from the engine's task, so keep it quick.
pub trait ProgressListener: Send + Sync {
    /// One event.
    fn event(&self, event: &ProgressEvent);
}

/// What a run produced: its report, and the error that stopped it if it failed.
#[derive(Debug)]
pub struct RunResult {
    /// The report (status [`report::RunStatus::Failed`] when `error` is set).
    pub report: Report,
    /// The error that stopped the run.
    pub error: Option<Error>,
}

/// Runs one request. Build it, set options, call [`Engine::run`].
pub struct Engine {
    request_type: String,
    source: Arc<dyn Source>,
    sink: Box<dyn Sink>,
    filter: Filter,
    state: Option<Arc<dyn StateStore>>,
    options: EngineOptions,
    listener: Option<Arc<dyn ProgressListener>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("request_type", &self.request_type)
            .field("source", &self.source.kind())
            .field("sink", &self.sink.kind())
            .field("filter", &self.filter)
            .field("options", &self.options)
            .finish()
    }
}

impl Engine {
    /// An engine for `request_type` moving mail from `source` to `sink`, with no filter, no
    /// saved state and default options.
    pub fn new(
        request_type: impl Into<String>,
        source: Arc<dyn Source>,
        sink: Box<dyn Sink>,
    ) -> Self {
        Engine {
            request_type: request_type.into(),
            source,
            sink,
            filter: Filter::default(),
            state: None,
            options: EngineOptions::default(),
            listener: None,
        }
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Keeps checkpoints in `store`, so that a re-run resumes.
    pub fn state(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = Some(store);
        self
    }

    /// Sets the options.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends progress events to `listener`.
    pub fn listener(mut self, listener: Arc<dyn ProgressListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Runs the request to the end (or to an error that retries cannot fix).
    pub async fn run(self) -> RunResult {
        run::Run::new(self).execute().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embedders spawn runs on their runtime: the future must be `Send`.
    #[allow(dead_code)]
    fn run_future_is_send(engine: Engine) {
        fn assert_send<T: Send>(_: T) {}
        assert_send(engine.run());
    }
}
