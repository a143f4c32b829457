//! The conformance suite every [`Source`] and [`Sink`] runs.
//!
//! A backend's test implements [`SinkHarness`] or [`SourceHarness`] and calls
//! [`run_sink_suite`] / [`run_source_suite`]. Each check panics with a message naming the
//! case and the message that broke it.
//!
//! The rule every case applies: each input message is either found in the output
//! (byte-exact for byte-exact backends, with its folder, and with flags and internal date
//! where the backend keeps them) or listed in the report's failures with a reason.
//! Nothing is lost silently, nothing appears twice, nothing appears that was not sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::{
    Engine, EngineOptions, Error, ErrorKind, Filter, Flag, FolderInfo, FolderPath, LocalStateStore,
    Message, MessageStream, Position, Report, Result, RunStatus, Sink, Source, SourceCapabilities,
    SourceEvent, WriteOutcome,
};

use crate::corpus;
use crate::memory::{InjectedFailure, MemorySink, MemorySource};

/// What a sink keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkCaps {
    /// Stores the raw bytes unchanged (false for PST, which keeps properties).
    pub byte_exact: bool,
    /// Keeps system flags.
    pub flags: bool,
    /// Keeps the internal date (to the second).
    pub internal_date: bool,
}

/// What a source yields besides bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceCaps {
    /// Yields the flags that were stored.
    pub flags: bool,
    /// Yields the internal date that was stored.
    pub internal_date: bool,
}

/// Test access to one sink backend at one output location.
#[async_trait]
pub trait SinkHarness: Send + Sync {
    /// A new sink on the harness's output location; a second one resumes the first's output.
    async fn sink(&self) -> Box<dyn Sink>;
    /// Everything the finished output holds, read back through the matching source.
    async fn read_back(&self) -> Vec<Message>;
    /// Deletes all output so the next sink starts empty.
    async fn reset(&self);
    /// What the sink keeps.
    fn caps(&self) -> SinkCaps;
}

/// Test access to one source backend.
#[async_trait]
pub trait SourceHarness: Send + Sync {
    /// Stores `messages` in a fresh location and returns a source over them.
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source>;
    /// What the source yields.
    fn caps(&self) -> SourceCaps;
}

fn system_flags(m: &Message) -> BTreeSet<Flag> {
    m.flags
        .iter()
        .filter(|f| !matches!(f, Flag::Keyword(_)))
        .cloned()
        .collect()
}

fn label(m: &Message) -> String {
    format!("{} / {} ({} bytes)", m.folder, m.source_id, m.size())
}

/// Asserts that `got` holds exactly the messages of `sent` except those the report lists as
/// skipped, matching by folder and bytes (or by the summary fields when not byte-exact).
pub fn assert_delivered(
    case: &str,
    sent: &[Message],
    got: &[Message],
    report: Option<&Report>,
    caps: SinkCaps,
) {
    let skipped: BTreeSet<(FolderPath, String)> = report
        .map(|r| {
            r.folders
                .iter()
                .flat_map(|f| {
                    f.failures
                        .iter()
                        .map(move |x| (f.folder.clone(), x.source_id.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    let key = |m: &Message| -> (FolderPath, Vec<u8>) {
        if caps.byte_exact {
            (m.folder.clone(), m.raw.to_vec())
        } else {
            let s = m.summary();
            (
                m.folder.clone(),
                format!("{}\u{1}{}\u{1}{}", s.subject, s.from, s.message_id).into_bytes(),
            )
        }
    };
    let mut pool: BTreeMap<(FolderPath, Vec<u8>), Vec<&Message>> = BTreeMap::new();
    for m in got {
        pool.entry(key(m)).or_default().push(m);
    }
    for m in sent {
        if skipped.contains(&(m.folder.clone(), m.source_id.clone())) {
            continue;
        }
        let Some(found) = pool.get_mut(&key(m)).and_then(|v| v.pop()) else {
            panic!(
                "[{case}] message {} is neither in the output nor reported as skipped",
                label(m)
            );
        };
        if caps.flags {
            assert_eq!(
                system_flags(found),
                system_flags(m),
                "[{case}] flags of {}",
                label(m)
            );
        }
        if caps.internal_date && m.internal_date.is_some() {
            assert_eq!(
                found.internal_date.map(|d| d.timestamp()),
                m.internal_date.map(|d| d.timestamp()),
                "[{case}] internal date of {}",
                label(m)
            );
        }
    }
    let extra: Vec<String> = pool.values().flatten().map(|m| label(m)).collect();
    assert!(
        extra.is_empty(),
        "[{case}] output holds messages that were not sent or were sent once but appear twice: {extra:?}"
    );
}

fn tmp_state() -> (tempfile::TempDir, Arc<LocalStateStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LocalStateStore::new(dir.path(), "conformance"));
    (dir, store)
}

fn opts(commit_every: u64) -> EngineOptions {
    EngineOptions {
        commit_every_messages: commit_every,
        retry: legacyflo_core::RetryPolicy {
            max_retries: 3,
            initial_backoff: std::time::Duration::from_millis(1),
            max_backoff: std::time::Duration::from_millis(5),
        },
        ..EngineOptions::default()
    }
}

/// Runs every sink case.
pub async fn run_sink_suite(h: &dyn SinkHarness) {
    sink_round_trip(h, "edge cases", corpus::edge_cases()).await;
    sink_round_trip(h, "sample mailbox", corpus::sample()).await;
    sink_round_trip(h, "generated corpus", corpus::generated(500, 7)).await;
    sink_redelivery_is_idempotent(h).await;
    sink_abort_discards(h).await;
    sink_resumes_after_crash(h).await;
    sink_resumes_a_finished_run(h).await;
    sink_resumes_after_failed_run(h).await;
}

/// Engine run of `messages` into the sink, then read back.
pub async fn sink_round_trip(h: &dyn SinkHarness, case: &str, messages: Vec<Message>) {
    h.reset().await;
    let (_dir, store) = tmp_state();
    let res = Engine::new(
        "CONFORMANCE",
        Arc::new(MemorySource::new(messages.clone())),
        h.sink().await,
    )
    .state(store)
    .options(opts(7))
    .run()
    .await;
    assert!(res.error.is_none(), "[{case}] run failed: {:?}", res.error);
    assert!(
        matches!(
            res.report.status,
            RunStatus::Done | RunStatus::DoneWithSkips
        ),
        "[{case}] status {:?}",
        res.report.status
    );
    let got = h.read_back().await;
    assert_delivered(case, &messages, &got, Some(&res.report), h.caps());
    assert_eq!(
        res.report.totals().messages as usize + res.report.totals().skipped as usize,
        messages.len(),
        "[{case}] report counts"
    );
}

async fn write_all(sink: &mut Box<dyn Sink>, msgs: &[Message]) -> Vec<WriteOutcome> {
    let mut out = Vec::new();
    let mut begun: Vec<FolderPath> = Vec::new();
    for m in msgs {
        if !begun.contains(&m.folder) {
            sink.begin_folder(&m.folder).await.expect("begin_folder");
            begun.push(m.folder.clone());
        }
        out.push(sink.write(m).await.expect("write"));
    }
    out
}

/// Writing the same (folder, source id) twice stores it once.
pub async fn sink_redelivery_is_idempotent(h: &dyn SinkHarness) {
    h.reset().await;
    let msgs = corpus::generated(6, 11);
    let mut sink = h.sink().await;
    sink.open(None).await.expect("open");
    write_all(&mut sink, &msgs[..4]).await;
    sink.commit().await.expect("commit");
    let again = write_all(&mut sink, &msgs[2..]).await;
    assert!(
        again[..2].iter().all(|o| *o == WriteOutcome::Duplicate),
        "[redelivery] re-written messages must be reported Duplicate, got {again:?}"
    );
    sink.finish().await.expect("finish");
    assert_delivered("redelivery", &msgs, &h.read_back().await, None, h.caps());
}

/// `abort` discards what was written since the last commit.
pub async fn sink_abort_discards(h: &dyn SinkHarness) {
    h.reset().await;
    let msgs = corpus::generated(6, 12);
    let mut sink = h.sink().await;
    sink.open(None).await.expect("open");
    write_all(&mut sink, &msgs[..3]).await;
    sink.commit().await.expect("commit");
    write_all(&mut sink, &msgs[3..5]).await;
    sink.abort().await.expect("abort");
    write_all(&mut sink, &msgs[5..]).await;
    sink.finish().await.expect("finish");
    let expected: Vec<Message> = msgs[..3].iter().chain(&msgs[5..]).cloned().collect();
    assert_delivered("abort", &expected, &h.read_back().await, None, h.caps());
}

/// A sink dropped after uncommitted writes resumes from its last commit state.
pub async fn sink_resumes_after_crash(h: &dyn SinkHarness) {
    h.reset().await;
    let msgs = corpus::generated(10, 13);
    let mut first = h.sink().await;
    first.open(None).await.expect("open");
    write_all(&mut first, &msgs[..5]).await;
    let state = first.commit().await.expect("commit");
    write_all(&mut first, &msgs[5..8]).await;
    drop(first); // crash: no commit, no finish
    let mut second = h.sink().await;
    second.open(Some(state)).await.expect("open with state");
    let outcomes = write_all(&mut second, &msgs[5..]).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, WriteOutcome::Written { .. })),
        "[crash resume] messages after the checkpoint must be written again, got {outcomes:?}"
    );
    second.finish().await.expect("finish");
    assert_delivered("crash resume", &msgs, &h.read_back().await, None, h.caps());
}

/// A process killed after `finish` and before the engine saved the finished state: the
/// sink restored from the last commit's state belongs to a finished run. The commit the
/// engine makes before every `finish` must change nothing, and `finish` must list the same
/// outputs, with every message once (a sink that refused the commit made every re-run of
/// the request fail).
pub async fn sink_resumes_a_finished_run(h: &dyn SinkHarness) {
    h.reset().await;
    let msgs = corpus::generated(8, 15);
    let mut first = h.sink().await;
    first.open(None).await.expect("open");
    write_all(&mut first, &msgs).await;
    let state = first.commit().await.expect("commit");
    let outputs = first.finish().await.expect("finish");
    drop(first); // killed before the finished state was saved
    let mut second = h.sink().await;
    second
        .open(Some(state))
        .await
        .expect("[finished resume] open with the last commit's state");
    second
        .commit()
        .await
        .expect("[finished resume] the engine's commit before finish");
    let again = second.finish().await.expect("[finished resume] finish");
    assert_eq!(again, outputs, "[finished resume] the same outputs");
    assert_delivered(
        "finished resume",
        &msgs,
        &h.read_back().await,
        None,
        h.caps(),
    );
}

/// An engine run that stops on a source error resumes with the same state: no gap, no
/// duplicate.
pub async fn sink_resumes_after_failed_run(h: &dyn SinkHarness) {
    h.reset().await;
    let msgs = corpus::generated(120, 14);
    let (_dir, store) = tmp_state();
    let failing = MemorySource::new(msgs.clone()).fail(InjectedFailure {
        after: 50,
        kind: ErrorKind::Other,
        times: usize::MAX,
    });
    let mut o = opts(9);
    o.jobs = 1;
    let first = Engine::new("CONFORMANCE", Arc::new(failing), h.sink().await)
        .state(store.clone())
        .options(o.clone())
        .run()
        .await;
    assert!(
        first.error.is_some(),
        "[failed-run resume] the injected failure must stop the first run"
    );
    assert_eq!(first.report.status, RunStatus::Failed);
    let second = Engine::new(
        "CONFORMANCE",
        Arc::new(MemorySource::new(msgs.clone())),
        h.sink().await,
    )
    .state(store)
    .options(o)
    .run()
    .await;
    assert!(
        second.error.is_none(),
        "[failed-run resume] second run failed: {:?}",
        second.error
    );
    assert!(
        second.report.resumed,
        "[failed-run resume] second run must resume"
    );
    assert_eq!(
        second.report.totals().messages as usize,
        msgs.len(),
        "[failed-run resume] total across runs"
    );
    assert_delivered(
        "failed-run resume",
        &msgs,
        &h.read_back().await,
        Some(&second.report),
        h.caps(),
    );
}

/// Runs every source case.
pub async fn run_source_suite(h: &dyn SourceHarness) {
    let mut all = corpus::edge_cases();
    all.extend(corpus::generated(300, 21));
    source_round_trip(h, "edge + generated", &all).await;
    source_round_trip(h, "sample mailbox", &corpus::sample()).await;
    source_resume_from_position(h, &corpus::generated(120, 22)).await;
    source_filters(h, &corpus::generated(200, 23)).await;
    source_survives_temporary_errors(h, &corpus::generated(150, 24)).await;
}

fn as_sink_caps(c: SourceCaps) -> SinkCaps {
    SinkCaps {
        byte_exact: true,
        flags: c.flags,
        internal_date: c.internal_date,
    }
}

async fn collect(
    source: &dyn Source,
    folder: &FolderPath,
    after: Option<&Position>,
) -> Vec<(Message, Position)> {
    let mut s = source
        .stream(folder, &Filter::default(), after)
        .await
        .expect("stream");
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        match ev.expect("stream item") {
            SourceEvent::Message(item) => out.push((item.message, item.position)),
            SourceEvent::Unreadable {
                source_id, reason, ..
            } => panic!("unreadable {source_id}: {reason}"),
            SourceEvent::Expunged { source_id, .. } => {
                panic!("{source_id} reported expunged from an unchanged mailbox")
            }
        }
    }
    out
}

/// Every event of `folder` (from the start), each with the source id it names; panics on
/// a stream error. For tests that check how a source accounts for what it listed.
pub async fn events_by_id(source: &dyn Source, folder: &FolderPath) -> Vec<(String, SourceEvent)> {
    let mut s = source
        .stream(folder, &Filter::default(), None)
        .await
        .expect("stream");
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        let ev = ev.expect("stream item");
        let id = match &ev {
            SourceEvent::Message(i) => i.message.source_id.clone(),
            SourceEvent::Unreadable { source_id, .. } | SourceEvent::Expunged { source_id, .. } => {
                source_id.clone()
            }
        };
        out.push((id, ev));
    }
    out
}

/// Stores `messages`, runs the source into a memory sink, compares.
pub async fn source_round_trip(h: &dyn SourceHarness, case: &str, messages: &[Message]) {
    let source = h.source_with(messages).await;
    let sink = MemorySink::new();
    let res = Engine::new("CONFORMANCE", source.clone(), Box::new(sink.clone()))
        .options(opts(50))
        .run()
        .await;
    assert!(res.error.is_none(), "[{case}] run failed: {:?}", res.error);
    let got = sink.committed();
    assert_delivered(case, messages, &got, None, as_sink_caps(h.caps()));
    // Stable order: two full passes agree.
    for f in source.list_folders().await.expect("list") {
        let a: Vec<String> = collect(source.as_ref(), &f.path, None)
            .await
            .into_iter()
            .map(|(m, _)| m.source_id)
            .collect();
        let b: Vec<String> = collect(source.as_ref(), &f.path, None)
            .await
            .into_iter()
            .map(|(m, _)| m.source_id)
            .collect();
        assert_eq!(
            a, b,
            "[{case}] folder {} streams in a different order on a second pass",
            f.path
        );
    }
}

/// Streaming after a position yields exactly the rest.
pub async fn source_resume_from_position(h: &dyn SourceHarness, messages: &[Message]) {
    let source = h.source_with(messages).await;
    for f in source.list_folders().await.expect("list") {
        let all = collect(source.as_ref(), &f.path, None).await;
        if all.len() < 2 {
            continue;
        }
        for k in [1, all.len() / 2, all.len() - 1] {
            let rest = collect(source.as_ref(), &f.path, Some(&all[k - 1].1)).await;
            let want: Vec<&[u8]> = all[k..].iter().map(|(m, _)| &m.raw[..]).collect();
            let got: Vec<&[u8]> = rest.iter().map(|(m, _)| &m.raw[..]).collect();
            assert!(
                want == got,
                "[resume] folder {} after message {k}: expected {} messages, got {}",
                f.path,
                want.len(),
                got.len()
            );
        }
        let end = collect(source.as_ref(), &f.path, Some(&all[all.len() - 1].1)).await;
        assert!(
            end.is_empty(),
            "[resume] nothing follows the last position in {}",
            f.path
        );
    }
}

/// Date and folder filters select exactly the matching messages.
pub async fn source_filters(h: &dyn SourceHarness, messages: &[Message]) {
    let source = h.source_with(messages).await;
    let everything = MemorySink::new();
    let r = Engine::new("CONFORMANCE", source.clone(), Box::new(everything.clone()))
        .run()
        .await;
    assert!(r.error.is_none());
    let all = everything.committed();
    let mut dates: Vec<_> = all.iter().filter_map(|m| m.effective_date()).collect();
    dates.sort();
    assert!(dates.len() >= 4, "[filters] corpus needs dated messages");
    let filter = Filter {
        since: Some(dates[dates.len() / 4].date_naive()),
        before: Some(dates[3 * dates.len() / 4].date_naive()),
        folder: None,
    };
    let want: BTreeSet<(FolderPath, Vec<u8>)> = all
        .iter()
        .filter(|m| filter.accepts(m))
        .map(|m| (m.folder.clone(), m.raw.to_vec()))
        .collect();
    let sink = MemorySink::new();
    let r = Engine::new("CONFORMANCE", source.clone(), Box::new(sink.clone()))
        .filter(filter.clone())
        .run()
        .await;
    assert!(r.error.is_none());
    let got: BTreeSet<(FolderPath, Vec<u8>)> = sink
        .committed()
        .iter()
        .map(|m| (m.folder.clone(), m.raw.to_vec()))
        .collect();
    assert_eq!(got.len(), want.len(), "[filters] date window {filter:?}");
    assert!(got == want, "[filters] date window selected other messages");
    // Folder filter: a folder and its sub-folders.
    let folders = source.list_folders().await.expect("list");
    if let Some(target) = folders.iter().find(|f| f.path.segments().len() >= 2) {
        let prefix = FolderPath::new(target.path.segments()[..1].iter().cloned());
        let sink = MemorySink::new();
        let r = Engine::new("CONFORMANCE", source.clone(), Box::new(sink.clone()))
            .filter(Filter {
                folder: Some(prefix.clone()),
                ..Filter::default()
            })
            .run()
            .await;
        assert!(r.error.is_none());
        let got = sink.committed();
        assert!(
            !got.is_empty(),
            "[filters] folder {prefix} selected nothing"
        );
        assert!(
            got.iter().all(|m| m.folder.starts_with(&prefix)),
            "[filters] folder filter leaked other folders"
        );
        let want = all.iter().filter(|m| m.folder.starts_with(&prefix)).count();
        assert_eq!(
            got.len(),
            want,
            "[filters] folder {prefix} and its sub-folders"
        );
    }
}

/// A source that fails with a temporary error once every `every` messages.
struct Flaky {
    inner: Arc<dyn Source>,
    every: usize,
    count: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Source for Flaky {
    fn kind(&self) -> &str {
        "flaky"
    }
    fn capabilities(&self) -> SourceCapabilities {
        self.inner.capabilities()
    }
    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        self.inner.list_folders().await
    }
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let inner = self.inner.stream(folder, filter, after).await?;
        let every = self.every;
        let count = &self.count;
        let mut stop = false;
        let s = inner
            .map(move |ev| {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if n.is_multiple_of(every) {
                    Err(Error::backend(
                        "flaky",
                        ErrorKind::Temporary,
                        "connection reset (injected)",
                    ))
                } else {
                    ev
                }
            })
            .take_while(move |r| {
                let go = !stop;
                if r.is_err() {
                    stop = true;
                }
                futures::future::ready(go)
            });
        Ok(Box::pin(s))
    }
}

/// Temporary errors mid-stream: the engine re-opens from the last position and nothing is
/// lost or duplicated.
pub async fn source_survives_temporary_errors(h: &dyn SourceHarness, messages: &[Message]) {
    let inner = h.source_with(messages).await;
    let flaky = Arc::new(Flaky {
        inner,
        every: 37,
        count: std::sync::atomic::AtomicUsize::new(0),
    });
    let sink = MemorySink::new();
    let res = Engine::new("CONFORMANCE", flaky, Box::new(sink.clone()))
        .options(opts(10))
        .run()
        .await;
    assert!(
        res.error.is_none(),
        "[temporary errors] run failed: {:?}",
        res.error
    );
    assert!(
        res.report.retries > 0,
        "[temporary errors] no retry happened"
    );
    assert_delivered(
        "temporary errors",
        messages,
        &sink.committed(),
        None,
        as_sink_caps(h.caps()),
    );
}
