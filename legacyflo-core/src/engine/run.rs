//! The run loop behind [`super::Engine::run`].

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::report::{FolderReport, Report, RunStatus};
use super::state::{FolderCheckpoint, RunState, StateStore};
use super::{Engine, EngineOptions, ProgressEvent, ProgressListener, RunResult};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::message::FolderPath;
use crate::request::{Field, FieldError, RequestErrors};
use crate::sink::{Placement, Settled, Sink, WriteOutcome};
use crate::source::{Position, Source, SourceEvent};

/// Why [`Run::pump`] stopped before every folder was done.
enum Stopped {
    /// The sink or a commit failed: the run may rewind to the last commit and retry.
    Sink(Error),
    /// A folder reader failed for good, after its own retries (the retry policy's budget,
    /// spent once: retrying the whole pump again would multiply it).
    Source(Error),
}

enum ReaderMsg {
    Event(usize, SourceEvent),
    Done(usize),
    Retrying(String, u32, std::time::Duration),
    Fatal(Error),
}

struct FolderRun {
    path: FolderPath,
    /// Position of the last message handed to the sink.
    position: Option<Position>,
    done: bool,
    begun: bool,
    report: FolderReport,
}

pub(super) struct Run {
    request_type: String,
    source: Arc<dyn Source>,
    sink: Box<dyn Sink>,
    filter: Filter,
    store: Option<Arc<dyn StateStore>>,
    options: EngineOptions,
    listener: Option<Arc<dyn ProgressListener>>,
    state: RunState,
    folders: Vec<FolderRun>,
    report: Report,
    started: Instant,
    pending_messages: u64,
    pending_bytes: u64,
    last_commit: Instant,
    /// Messages and bytes already stored by earlier runs when this one started.
    baseline: (u64, u64),
    /// Ids of messages written since the last commit (moved to the report by `commit`).
    pending_placements: Vec<Placement>,
}

/// Lists the source's folders (retrying temporary errors) and applies the folder filter;
/// borrows only what it needs, so that the sink can be opened meanwhile.
struct Listing<'a> {
    source: Arc<dyn Source>,
    filter: &'a Filter,
    retry: &'a super::RetryPolicy,
    listener: Option<Arc<dyn ProgressListener>>,
}

impl Listing<'_> {
    /// The selected folders, and the retries it took.
    async fn run(self) -> (Result<Vec<crate::source::FolderInfo>>, u32) {
        let mut attempt = 0u32;
        let all = loop {
            match self.source.list_folders().await {
                Ok(all) => break all,
                Err(e) if e.is_retryable() && attempt < self.retry.max_retries => {
                    attempt += 1;
                    let delay = self.retry.delay(attempt, e.retry_after());
                    warn!(message = "listing folders failed; retrying", error = %e, attempt, delay_ms = delay.as_millis() as u64);
                    if let Some(l) = &self.listener {
                        l.event(&ProgressEvent::Retrying {
                            error: e.to_string(),
                            attempt,
                            delay,
                        });
                    }
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return (Err(e), attempt),
            }
        };
        let selected: Vec<_> = all
            .into_iter()
            .filter(|f| f.selectable && self.filter.accepts_folder(&f.path))
            .collect();
        if let Some(folder) = &self.filter.folder
            && selected.is_empty()
        {
            let e = Error::InvalidRequest(RequestErrors(vec![FieldError {
                field: Field::Folder,
                message: format!("the source has no folder `{folder}`"),
            }]));
            return (Err(e), attempt);
        }
        (Ok(selected), attempt)
    }
}

impl Run {
    pub(super) fn new(e: Engine) -> Self {
        Run {
            report: Report::new(&e.request_type),
            request_type: e.request_type,
            source: e.source,
            sink: e.sink,
            filter: e.filter,
            store: e.state,
            options: e.options,
            listener: e.listener,
            state: RunState::default(),
            folders: Vec::new(),
            started: Instant::now(),
            pending_messages: 0,
            pending_bytes: 0,
            last_commit: Instant::now(),
            baseline: (0, 0),
            pending_placements: Vec::new(),
        }
    }

    fn emit(&self, ev: ProgressEvent) {
        if let Some(l) = &self.listener {
            l.event(&ev);
        }
    }

    pub(super) async fn execute(mut self) -> RunResult {
        let outcome = self.execute_inner().await;
        let error = match outcome {
            Ok(()) => None,
            Err(e) => {
                debug!(message = "run failed", request_type = %self.request_type, error = %e);
                self.report.status = RunStatus::Failed;
                self.report.error = Some(e.to_string());
                Some(e)
            }
        };
        if self.report.status != RunStatus::DryRun && !self.folders.is_empty() {
            self.report.folders = self.folders.iter().map(|f| f.report.clone()).collect();
        }
        let t = self.report.totals();
        self.report.run_messages = t.messages.saturating_sub(self.baseline.0);
        self.report.run_bytes = t.bytes.saturating_sub(self.baseline.1);
        self.report.end = Utc::now();
        self.report.duration_secs = self.started.elapsed().as_secs_f64();
        if error.is_none()
            && self.report.status == RunStatus::Done
            && self.report.totals().skipped > 0
        {
            self.report.status = RunStatus::DoneWithSkips;
        }
        RunResult {
            report: self.report,
            error,
        }
    }

    async fn execute_inner(&mut self) -> Result<()> {
        if let Some(store) = &self.store
            && let Some(bytes) = store.load().await?
        {
            self.state = RunState::from_bytes(&bytes)?;
            if self.state.request_type != self.request_type {
                return Err(Error::State(format!(
                    "{} holds the state of a {} request, not {}",
                    store.describe(),
                    self.state.request_type,
                    self.request_type
                )));
            }
            self.report.resumed = true;
            info!(message = "resuming from saved state", state = %store.describe());
        }
        self.state.version = RunState::VERSION;
        self.state.request_type = self.request_type.clone();
        if self.state.first_started.is_none() {
            self.state.first_started = Some(self.report.start.to_rfc3339());
        }
        if self.state.finished {
            info!(message = "request already complete; nothing to do");
            self.folders = self
                .state
                .folders
                .iter()
                .map(|c| FolderRun {
                    path: c.path.clone(),
                    position: c.position.clone(),
                    done: true,
                    begun: false,
                    report: c.report.clone(),
                })
                .collect();
            self.report.outputs = self.state.outputs.clone();
            self.baseline = (
                self.folders.iter().map(|f| f.report.messages).sum(),
                self.folders.iter().map(|f| f.report.bytes).sum(),
            );
            return Ok(());
        }

        if self.options.dry_run {
            let folders = self.select_folders().await?;
            return self.dry_run(folders).await;
        }
        // On a resume the sink is opened while the source lists its folders: both usually
        // wait on a server (a login, a bucket check), and a re-run that finds nothing new
        // is mostly that wait. Its output already exists, so opening it early changes
        // nothing if the listing fails. A fresh run lists first, so that a bad folder
        // filter leaves no output behind. A listing error wins over an opening error.
        let folders = match self.state.sink.clone() {
            Some(resume) => {
                let listing = Listing {
                    source: self.source.clone(),
                    filter: &self.filter,
                    retry: &self.options.retry,
                    listener: self.listener.clone(),
                };
                let (listed, opened) = tokio::join!(listing.run(), self.sink.open(Some(resume)));
                self.report.retries += u64::from(listed.1);
                let folders = listed.0?;
                opened?;
                folders
            }
            None => {
                let folders = self.select_folders().await?;
                self.sink.open(None).await?;
                folders
            }
        };
        self.folders = folders
            .iter()
            .map(|info| {
                let cp = self.state.folder(&info.path).cloned();
                let mut report = match cp.as_ref() {
                    Some(c) => c.report.clone(),
                    // A fresh folder: what the listing noticed goes into its report once
                    // (a resumed folder's checkpointed report already holds it).
                    None => listed_report(info),
                };
                report.folder = info.path.clone();
                FolderRun {
                    path: info.path.clone(),
                    position: cp.as_ref().and_then(|c| c.position.clone()),
                    done: cp.as_ref().is_some_and(|c| c.done),
                    begun: false,
                    report,
                }
            })
            .collect();
        self.baseline = (
            self.folders.iter().map(|f| f.report.messages).sum(),
            self.folders.iter().map(|f| f.report.bytes).sum(),
        );
        let expected = folders.iter().map(|f| f.messages).sum::<Option<u64>>();
        let already: u64 = self
            .folders
            .iter()
            .map(|f| f.report.messages + f.report.duplicates)
            .sum();
        self.emit(ProgressEvent::Started {
            folders: self.folders.len(),
            messages: if self.filter.has_dates() {
                None
            } else {
                expected
            },
            already_done: already,
        });

        let mut consecutive_failures = 0u32;
        loop {
            let committed_before = self.state.folders.clone();
            let outcome = self.pump().await;
            if self.state.folders != committed_before {
                // Progress was made durable since the last failure: start counting afresh.
                consecutive_failures = 0;
            }
            match outcome {
                Ok(()) => break,
                Err(Stopped::Source(e)) => return Err(e),
                Err(Stopped::Sink(e))
                    if e.is_retryable()
                        && consecutive_failures < self.options.retry.max_retries =>
                {
                    consecutive_failures += 1;
                    self.report.retries += 1;
                    let delay = self
                        .options
                        .retry
                        .delay(consecutive_failures, e.retry_after());
                    warn!(message = "sink failed; rewinding to the last commit", error = %e, attempt = consecutive_failures, delay_ms = delay.as_millis() as u64);
                    self.emit(ProgressEvent::Retrying {
                        error: e.to_string(),
                        attempt: consecutive_failures,
                        delay,
                    });
                    self.sink.abort().await?;
                    self.rewind();
                    tokio::time::sleep(delay).await;
                }
                Err(Stopped::Sink(e)) => return Err(e),
            }
        }
        self.commit().await?;
        let outputs = self.sink.finish().await?;
        self.apply_settled();
        self.state.folders = self.folder_checkpoints();
        self.state.finished = true;
        self.state.outputs = outputs.clone();
        self.save_state().await?;
        self.report.outputs = outputs;
        info!(message = "request complete", request_type = %self.request_type);
        Ok(())
    }

    async fn select_folders(&mut self) -> Result<Vec<crate::source::FolderInfo>> {
        let listing = Listing {
            source: self.source.clone(),
            filter: &self.filter,
            retry: &self.options.retry,
            listener: self.listener.clone(),
        };
        let (folders, retries) = listing.run().await;
        self.report.retries += u64::from(retries);
        folders
    }

    async fn dry_run(&mut self, folders: Vec<crate::source::FolderInfo>) -> Result<()> {
        self.report.status = RunStatus::DryRun;
        for info in folders {
            let mut fr = listed_report(&info);
            fr.complete = true;
            match info.messages {
                Some(n) if !self.filter.has_dates() => fr.messages = n,
                _ => {
                    let mut stream = self.source.stream(&info.path, &self.filter, None).await?;
                    while let Some(ev) = stream.next().await {
                        match ev? {
                            SourceEvent::Message(item) => {
                                if self.filter.accepts(&item.message) {
                                    fr.messages += 1;
                                    fr.bytes += item.message.size();
                                } else {
                                    fr.filtered += 1;
                                }
                            }
                            SourceEvent::Unreadable {
                                source_id, reason, ..
                            } => fr.skip(&source_id, &reason),
                            SourceEvent::Expunged { .. } => fr.expunged += 1,
                        }
                    }
                }
            }
            self.report.folders.push(fr);
        }
        Ok(())
    }

    /// Restores in-memory progress to the last saved checkpoint.
    fn rewind(&mut self) {
        for f in &mut self.folders {
            match self.state.folder(&f.path) {
                Some(cp) => {
                    f.position = cp.position.clone();
                    f.done = cp.done;
                    f.report = cp.report.clone();
                }
                None => {
                    f.position = None;
                    f.done = false;
                    f.report = FolderReport {
                        folder: f.path.clone(),
                        ..FolderReport::default()
                    };
                }
            }
            f.begun = false;
        }
        self.pending_bytes = 0;
        self.pending_messages = 0;
        self.pending_placements.clear();
    }

    fn spawn_readers(&self, tx: mpsc::Sender<ReaderMsg>) -> JoinSet<()> {
        let mut set = JoinSet::new();
        let jobs = if self.source.capabilities().concurrent_folders {
            self.options.jobs.max(1)
        } else {
            1
        };
        let sem = Arc::new(Semaphore::new(jobs));
        for (idx, f) in self.folders.iter().enumerate() {
            if f.done {
                continue;
            }
            let source = self.source.clone();
            let path = f.path.clone();
            let filter = self.filter.clone();
            let start = f.position.clone();
            let tx = tx.clone();
            let sem = sem.clone();
            let retry = self.options.retry;
            set.spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return;
                };
                read_folder(source, idx, path, filter, start, tx, retry).await;
            });
        }
        set
    }

    /// Moves messages until every folder is done. A sink error is returned so the caller
    /// can rewind and retry; a reader's final error is returned as such (its retries are
    /// spent); readers are stopped on return.
    async fn pump(&mut self) -> std::result::Result<(), Stopped> {
        let remaining = self.folders.iter().filter(|f| !f.done).count();
        if remaining == 0 {
            return Ok(());
        }
        let (tx, mut rx) = mpsc::channel(self.options.buffer.max(1));
        let mut readers = self.spawn_readers(tx);
        let mut remaining = remaining;
        let mut tick = tokio::time::interval(self.options.commit_interval);
        tick.tick().await;
        let result = loop {
            let msg = tokio::select! {
                m = rx.recv() => m,
                _ = tick.tick() => {
                    if self.pending_messages > 0
                        && let Err(e) = self.commit().await { break Err(Stopped::Sink(e)); }
                    continue;
                }
            };
            let Some(msg) = msg else {
                break Err(Stopped::Source(Error::State(
                    "all folder readers stopped before finishing".into(),
                )));
            };
            match msg {
                ReaderMsg::Event(idx, ev) => {
                    if let Err(e) = self.handle_event(idx, ev).await {
                        break Err(Stopped::Sink(e));
                    }
                    if (self.pending_messages >= self.options.commit_every_messages
                        || self.pending_bytes >= self.options.commit_every_bytes
                        || self.last_commit.elapsed() >= self.options.commit_interval)
                        && let Err(e) = self.commit().await
                    {
                        break Err(Stopped::Sink(e));
                    }
                }
                ReaderMsg::Done(idx) => {
                    if let Some(f) = self.folders.get_mut(idx) {
                        f.done = true;
                        f.report.complete = true;
                        info!(message = "folder done", folder = %f.path, messages = f.report.messages);
                        let path = f.path.clone();
                        self.emit(ProgressEvent::FolderDone(path));
                    }
                    remaining -= 1;
                    if remaining == 0 {
                        break Ok(());
                    }
                }
                ReaderMsg::Retrying(error, attempt, delay) => {
                    self.report.retries += 1;
                    self.emit(ProgressEvent::Retrying {
                        error,
                        attempt,
                        delay,
                    });
                }
                ReaderMsg::Fatal(e) => {
                    // The sink is healthy: keep what was written before stopping.
                    readers.abort_all();
                    if let Err(ce) = self.commit().await {
                        warn!(message = "could not commit after a source failure", error = %ce);
                    }
                    break Err(Stopped::Source(e));
                }
            }
        };
        readers.abort_all();
        while readers.join_next().await.is_some() {}
        result
    }

    async fn handle_event(&mut self, idx: usize, ev: SourceEvent) -> Result<()> {
        let Some(f) = self.folders.get_mut(idx) else {
            return Err(Error::State(format!(
                "reader sent an unknown folder index {idx}"
            )));
        };
        match ev {
            SourceEvent::Expunged {
                source_id,
                position,
            } => {
                info!(message = "message deleted at the source during the run", folder = %f.path, source_id = %source_id);
                f.report.expunged += 1;
                f.position = Some(position);
            }
            SourceEvent::Unreadable {
                source_id,
                position,
                reason,
            } => {
                warn!(message = "unreadable message skipped", folder = %f.path, source_id = %source_id, reason = %reason);
                f.report.skip(&source_id, &reason);
                f.position = Some(position);
                let folder = f.path.clone();
                self.emit(ProgressEvent::Skipped { folder, reason });
            }
            SourceEvent::Message(item) => {
                let mut message = item.message;
                if !self.filter.accepts(&message) {
                    f.report.filtered += 1;
                    f.position = Some(item.position);
                    return Ok(());
                }
                // The folder the sink sees is the reader's folder, whatever the source set.
                message.folder = f.path.clone();
                if !f.begun {
                    self.sink.begin_folder(&message.folder).await?;
                    let f = &mut self.folders[idx];
                    f.begun = true;
                    self.emit(ProgressEvent::FolderStarted(message.folder.clone()));
                }
                let outcome = self.sink.write(&message).await?;
                let f = &mut self.folders[idx];
                f.position = Some(item.position);
                let size = message.size();
                match outcome {
                    WriteOutcome::Written { id } => {
                        if let Some(id) = id {
                            self.pending_placements.push(Placement {
                                folder: message.folder.clone(),
                                source_id: message.source_id.clone(),
                                id,
                            });
                        }
                        f.report.messages += 1;
                        f.report.bytes += size;
                        self.pending_messages += 1;
                        self.pending_bytes += size;
                        self.emit(ProgressEvent::Message {
                            folder: message.folder,
                            bytes: size,
                        });
                    }
                    WriteOutcome::Duplicate => {
                        f.report.duplicates += 1;
                        self.pending_messages += 1;
                        self.emit(ProgressEvent::Message {
                            folder: message.folder,
                            bytes: size,
                        });
                    }
                    WriteOutcome::Rejected { reason } => {
                        warn!(message = "message rejected by the destination", folder = %f.path, source_id = %message.source_id, reason = %reason);
                        f.report.skip(&message.source_id, &reason);
                        self.emit(ProgressEvent::Skipped {
                            folder: message.folder,
                            reason,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        let sink_state = self.sink.commit().await?;
        self.state.sink = Some(sink_state);
        self.report.placements.append(&mut self.pending_placements);
        self.apply_settled();
        self.state.folders = self.folder_checkpoints();
        self.save_state().await?;
        let durable: u64 = self
            .folders
            .iter()
            .map(|f| f.report.messages + f.report.duplicates)
            .sum();
        debug!(message = "committed", messages = durable);
        self.pending_messages = 0;
        self.pending_bytes = 0;
        self.last_commit = Instant::now();
        self.emit(ProgressEvent::Committed { messages: durable });
        Ok(())
    }

    /// Takes what the sink settled since the last call ([`Sink::settled`]): ids go to the
    /// report's placements; a message refused after all moves from stored to skipped in its
    /// folder's report (and in the saved checkpoint, which `commit` and `finish` rebuild
    /// from the folders).
    fn apply_settled(&mut self) {
        for s in self.sink.settled() {
            let (folder, source_id, bytes, reason) = match s {
                Settled::Stored(p) => {
                    self.report.placements.push(p);
                    continue;
                }
                Settled::Refused {
                    folder,
                    source_id,
                    bytes,
                    reason,
                } => (folder, source_id, bytes, reason),
            };
            warn!(message = "message refused by the destination after it was accepted", folder = %folder, source_id = %source_id, reason = %reason);
            // A sink may store the root folder's messages elsewhere (PST: INBOX); such a
            // refusal names the sink's folder, so the root folder takes it when no folder
            // of the run matches.
            let idx = self
                .folders
                .iter()
                .position(|f| f.path == folder)
                .or_else(|| self.folders.iter().position(|f| f.path.is_root()));
            match idx.and_then(|i| self.folders.get_mut(i)) {
                Some(f) => {
                    f.report.messages = f.report.messages.saturating_sub(1);
                    f.report.bytes = f.report.bytes.saturating_sub(bytes);
                    f.report.skip(&source_id, &reason);
                }
                None => {
                    let mut report = super::report::FolderReport {
                        folder: folder.clone(),
                        complete: true,
                        ..Default::default()
                    };
                    report.skip(&source_id, &reason);
                    self.folders.push(FolderRun {
                        path: folder,
                        position: None,
                        done: true,
                        begun: true,
                        report,
                    });
                }
            }
        }
    }

    /// The folders' checkpoints, as saved with the state.
    fn folder_checkpoints(&self) -> Vec<FolderCheckpoint> {
        self.folders
            .iter()
            .map(|f| FolderCheckpoint {
                path: f.path.clone(),
                position: f.position.clone(),
                done: f.done,
                report: f.report.clone(),
            })
            .collect()
    }

    async fn save_state(&mut self) -> Result<()> {
        if let Some(store) = &self.store {
            store.save(&self.state.to_bytes()?).await?;
        }
        Ok(())
    }
}

async fn read_folder(
    source: Arc<dyn Source>,
    idx: usize,
    path: FolderPath,
    filter: Filter,
    start: Option<Position>,
    tx: mpsc::Sender<ReaderMsg>,
    retry: super::RetryPolicy,
) {
    let mut position = start;
    let mut attempts = 0u32;
    loop {
        let err = match source.stream(&path, &filter, position.as_ref()).await {
            Ok(mut stream) => {
                let mut failed = None;
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(ev) => {
                            attempts = 0;
                            position = Some(ev.position().clone());
                            if tx.send(ReaderMsg::Event(idx, ev)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    None => {
                        let _ = tx.send(ReaderMsg::Done(idx)).await;
                        return;
                    }
                    Some(e) => e,
                }
            }
            Err(e) => e,
        };
        if err.is_retryable() && attempts < retry.max_retries {
            attempts += 1;
            let delay = retry.delay(attempts, err.retry_after());
            warn!(message = "source failed; retrying from the last position", folder = %path, error = %err, attempt = attempts, delay_ms = delay.as_millis() as u64);
            if tx
                .send(ReaderMsg::Retrying(err.to_string(), attempts, delay))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(delay).await;
            continue;
        }
        let _ = tx.send(ReaderMsg::Fatal(err)).await;
        return;
    }
}

/// The report a fresh folder starts with: the listing's notes, and the entries skipped
/// while listing counted as skipped messages.
fn listed_report(info: &crate::source::FolderInfo) -> FolderReport {
    let mut report = FolderReport {
        folder: info.path.clone(),
        notes: info.notes.clone(),
        ..FolderReport::default()
    };
    for s in &info.skipped {
        report.skip(&s.source_id, &s.reason);
    }
    report
}
