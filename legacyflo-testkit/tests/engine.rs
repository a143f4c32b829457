//! Engine behaviour with the in-memory backends: retries, failures, skips, dry runs,
//! concurrency and finished-state re-runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use legacyflo_core::{
    Engine, EngineOptions, Error, ErrorKind, Filter, FolderPath, LocalStateStore, Message, Output,
    Result, RetryPolicy, RunStatus, Sink, SinkState, WriteOutcome,
};
use legacyflo_testkit::corpus;
use legacyflo_testkit::memory::{InjectedFailure, MemorySink, MemorySource};

fn fast() -> EngineOptions {
    EngineOptions {
        commit_every_messages: 10,
        retry: RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        },
        ..EngineOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_temporary_error_rewinds_and_completes() {
    let msgs = corpus::generated(200, 1);
    let sink = MemorySink::new()
        .fail_write(57, ErrorKind::Temporary)
        .fail_write(130, ErrorKind::RateLimited);
    let dir = tempfile::tempdir().unwrap();
    let res = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs.clone())),
        Box::new(sink.clone()),
    )
    .state(Arc::new(LocalStateStore::new(dir.path(), "k")))
    .options(fast())
    .run()
    .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.report.retries, 2);
    let got = sink.committed();
    assert_eq!(got.len(), msgs.len());
    assert_eq!(
        legacyflo_testkit::memory::ids(&got),
        legacyflo_testkit::memory::ids(&msgs)
    );
    assert_eq!(
        res.report.totals().messages,
        200,
        "counts rewound with the sink"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_sink_error_fails_the_run() {
    let msgs = corpus::generated(30, 2);
    let sink = MemorySink::new().fail_write(5, ErrorKind::PermissionDenied);
    let res = Engine::new("T", Arc::new(MemorySource::new(msgs)), Box::new(sink))
        .options(fast())
        .run()
        .await;
    assert_eq!(res.report.status, RunStatus::Failed);
    assert!(matches!(
        res.error.as_ref().map(Error::kind),
        Some(ErrorKind::PermissionDenied)
    ));
    assert!(
        res.report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("injected write failure")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_temporary_errors_are_retried_to_exhaustion() {
    let msgs = corpus::generated(30, 3);
    let src = MemorySource::new(msgs).fail(InjectedFailure {
        after: 10,
        kind: ErrorKind::Temporary,
        times: usize::MAX,
    });
    let res = Engine::new("T", Arc::new(src), Box::new(MemorySink::new()))
        .options(fast())
        .run()
        .await;
    assert_eq!(res.report.status, RunStatus::Failed);
    assert!(res.report.retries >= 4);
}

struct RejectBig(MemorySink);

#[async_trait]
impl Sink for RejectBig {
    fn kind(&self) -> &str {
        "reject-big"
    }
    async fn open(&mut self, r: Option<SinkState>) -> Result<()> {
        self.0.open(r).await
    }
    async fn begin_folder(&mut self, f: &FolderPath) -> Result<()> {
        self.0.begin_folder(f).await
    }
    async fn write(&mut self, m: &Message) -> Result<WriteOutcome> {
        if m.size() > 5 << 20 {
            return Ok(WriteOutcome::Rejected {
                reason: "larger than 5 MiB".into(),
            });
        }
        self.0.write(m).await
    }
    async fn commit(&mut self) -> Result<SinkState> {
        self.0.commit().await
    }
    async fn abort(&mut self) -> Result<()> {
        self.0.abort().await
    }
    async fn finish(&mut self) -> Result<Vec<Output>> {
        self.0.finish().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_are_reported_with_reasons() {
    let msgs = corpus::edge_cases();
    let res = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs.clone())),
        Box::new(RejectBig(MemorySink::new())),
    )
    .run()
    .await;
    assert_eq!(res.report.status, RunStatus::DoneWithSkips);
    let t = res.report.totals();
    assert_eq!(t.skipped, 1);
    assert_eq!(t.messages as usize, msgs.len() - 1);
    let fail = res
        .report
        .folders
        .iter()
        .flat_map(|f| f.failures.iter())
        .next()
        .unwrap();
    assert_eq!(fail.source_id, "e10");
    assert_eq!(fail.reason, "larger than 5 MiB");
    let json = res.report.to_json();
    assert_eq!(json["status"], "done_with_skips");
    assert_eq!(json["totals"]["skipped"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_and_writes_nothing() {
    let msgs = corpus::generated(100, 4);
    let sink = MemorySink::new();
    let res = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs)),
        Box::new(sink.clone()),
    )
    .options(EngineOptions {
        dry_run: true,
        ..fast()
    })
    .run()
    .await;
    assert_eq!(res.report.status, RunStatus::DryRun);
    assert_eq!(res.report.totals().messages, 100);
    assert!(sink.committed().is_empty());
    assert_eq!(sink.store().lock().unwrap().commits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_folder_filter_is_a_bad_request() {
    let res = Engine::new(
        "T",
        Arc::new(MemorySource::new(corpus::generated(10, 5))),
        Box::new(MemorySink::new()),
    )
    .filter(Filter {
        folder: Some(FolderPath::parse("No/Such", '/')),
        ..Filter::default()
    })
    .run()
    .await;
    let err = res.error.expect("must fail");
    assert!(err.is_bad_request());
    assert!(err.to_string().contains("Folder (--folder)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_request_is_not_redone() {
    let msgs = corpus::generated(40, 6);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStateStore::new(dir.path(), "k"));
    let sink = MemorySink::new();
    let first = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs.clone())),
        Box::new(sink.clone()),
    )
    .state(store.clone())
    .run()
    .await;
    assert_eq!(first.report.status, RunStatus::Done);
    let again_sink = MemorySink::new();
    let second = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs)),
        Box::new(again_sink.clone()),
    )
    .state(store)
    .run()
    .await;
    assert_eq!(second.report.status, RunStatus::Done);
    assert!(second.report.resumed);
    assert_eq!(second.report.totals().messages, 40);
    assert_eq!(second.report.outputs, first.report.outputs);
    assert!(
        again_sink.committed().is_empty(),
        "nothing is written again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_another_request_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStateStore::new(dir.path(), "k"));
    let r = Engine::new(
        "A",
        Arc::new(MemorySource::new(corpus::generated(3, 7))),
        Box::new(MemorySink::new()),
    )
    .state(store.clone())
    .run()
    .await;
    assert!(r.error.is_none());
    let r = Engine::new(
        "B",
        Arc::new(MemorySource::new(corpus::generated(3, 7))),
        Box::new(MemorySink::new()),
    )
    .state(store)
    .run()
    .await;
    assert!(
        r.error
            .unwrap()
            .to_string()
            .contains("holds the state of a A request")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_folders_concurrently_each_once_in_folder_order() {
    let msgs = corpus::generated(600, 8);
    let sink = MemorySink::new();
    let res = Engine::new(
        "T",
        Arc::new(MemorySource::new(msgs.clone())),
        Box::new(sink.clone()),
    )
    .options(EngineOptions { jobs: 4, ..fast() })
    .run()
    .await;
    assert!(res.error.is_none());
    let got = sink.committed();
    assert_eq!(got.len(), 600);
    // Within each folder, the source order is kept.
    let want = legacyflo_testkit::memory::by_folder(&msgs);
    let have = legacyflo_testkit::memory::by_folder(&got);
    for (folder, list) in want {
        let a: Vec<_> = list.iter().map(|m| m.source_id.clone()).collect();
        let b: Vec<_> = have
            .get(&folder)
            .unwrap()
            .iter()
            .map(|m| m.source_id.clone())
            .collect();
        assert_eq!(a, b, "order in {folder}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_is_an_error_not_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.json"), b"{not json").unwrap();
    let r = Engine::new(
        "T",
        Arc::new(MemorySource::new(corpus::generated(3, 9))),
        Box::new(MemorySink::new()),
    )
    .state(Arc::new(LocalStateStore::new(dir.path(), "k")))
    .run()
    .await;
    assert!(matches!(r.error, Some(Error::State(_))), "{:?}", r.error);
}

/// A source whose folder listing fails twice with a temporary error.
struct FlakyList {
    inner: MemorySource,
    failures: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl legacyflo_core::Source for FlakyList {
    fn kind(&self) -> &str {
        "flaky-list"
    }
    async fn list_folders(&self) -> Result<Vec<legacyflo_core::FolderInfo>> {
        if self
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            < 2
        {
            return Err(Error::backend(
                "flaky",
                ErrorKind::Temporary,
                "connection refused (injected)",
            ));
        }
        self.inner.list_folders().await
    }
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&legacyflo_core::Position>,
    ) -> Result<legacyflo_core::MessageStream<'a>> {
        self.inner.stream(folder, filter, after).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_listing_failures_are_retried() {
    let msgs = corpus::generated(20, 10);
    let src = FlakyList {
        inner: MemorySource::new(msgs),
        failures: std::sync::atomic::AtomicU32::new(0),
    };
    let sink = MemorySink::new();
    let res = Engine::new("T", Arc::new(src), Box::new(sink.clone()))
        .options(fast())
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.report.retries, 2);
    assert_eq!(sink.committed().len(), 20);
}

/// A source whose listing carries a note and a skipped entry, and whose stream yields an
/// expunged message between two readable ones.
struct ListedEvents;

#[async_trait]
impl legacyflo_core::Source for ListedEvents {
    fn kind(&self) -> &str {
        "listed-events"
    }
    async fn list_folders(&self) -> Result<Vec<legacyflo_core::FolderInfo>> {
        let mut info = legacyflo_core::FolderInfo::new(FolderPath::new(vec!["F".to_string()]));
        info.notes.push("two mailboxes decode to F".to_string());
        info.skipped.push(legacyflo_core::Failure {
            source_id: "F/cur/link".to_string(),
            reason: "symbolic link".to_string(),
        });
        Ok(vec![info])
    }
    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        _filter: &Filter,
        after: Option<&legacyflo_core::Position>,
    ) -> Result<legacyflo_core::MessageStream<'a>> {
        use legacyflo_core::{SourceEvent, SourceItem};
        let start: usize = after.map_or(0, |p| p.parse().unwrap_or(0));
        let events: Vec<Result<SourceEvent>> = (0..3usize)
            .skip(start)
            .map(|i| {
                let position = (i + 1).to_string();
                Ok(if i == 1 {
                    SourceEvent::Expunged {
                        source_id: "gone".to_string(),
                        position,
                    }
                } else {
                    SourceEvent::Message(SourceItem {
                        message: Message::new(
                            format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes(),
                            folder.clone(),
                            format!("m{i}"),
                        ),
                        position,
                    })
                })
            })
            .collect();
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expunged_listing_notes_and_listing_skips_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::new();
    let res = Engine::new("T", Arc::new(ListedEvents), Box::new(sink.clone()))
        .state(Arc::new(LocalStateStore::new(dir.path(), "k")))
        .options(fast())
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(sink.committed().len(), 2);
    let t = res.report.totals();
    assert_eq!((t.messages, t.expunged, t.skipped), (2, 1, 1));
    assert_eq!(res.report.status, RunStatus::DoneWithSkips);
    let f = &res.report.folders[0];
    assert_eq!(f.notes, vec!["two mailboxes decode to F".to_string()]);
    assert_eq!(f.failures[0].source_id, "F/cur/link");
    let human = res.report.to_string();
    assert!(human.contains("1 expunged at the source"), "{human}");
    assert!(human.contains("note: two mailboxes decode to F"), "{human}");
    let json = res.report.to_json();
    assert_eq!(json["totals"]["expunged"], 1);
}
