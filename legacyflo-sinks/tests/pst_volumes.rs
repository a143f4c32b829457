//! The PST sink past its volume cap: `name.pst`, `name-002.pst`, … each with its content
//! list, every message in exactly one volume, and a restored finished run listing the same
//! outputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use futures::StreamExt;
use legacyflo_core::{Filter, OutputKind, Sink, Source, SourceEvent, WriteOutcome};
use legacyflo_sinks::pst::{PstSink, WriterOptions};
use legacyflo_sources::pst::PstSource;
use legacyflo_testkit::corpus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolls_into_volumes_with_a_content_list_each() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("big.pst");
    let options = WriterOptions {
        volume_cap: 3 << 20,
        ..WriterOptions::default()
    };
    let msgs = corpus::generated(200, 31);
    let mut sink = PstSink::with_options(&dest, options.clone());
    sink.open(None).await.unwrap();
    let mut written = 0u64;
    let mut rejected = 0u64;
    for (i, m) in msgs.iter().enumerate() {
        match sink.write(m).await.unwrap() {
            WriteOutcome::Written { .. } => written += 1,
            WriteOutcome::Rejected { reason } => {
                assert!(m.size() * 3 > (1 << 20), "{} rejected: {reason}", m.size());
                rejected += 1;
            }
            WriteOutcome::Duplicate => panic!("duplicate"),
        }
        if i % 40 == 0 {
            sink.commit().await.unwrap();
        }
    }
    let state = sink.commit().await.unwrap();
    let outputs = sink.finish().await.unwrap();
    assert!(outputs.len() >= 4, "expected several volumes: {outputs:?}");
    assert_eq!(written + rejected, msgs.len() as u64);
    let mut total = 0;
    for (n, pair) in outputs.chunks(2).enumerate() {
        let [pst, csv] = pair else {
            panic!("outputs come in pairs: {outputs:?}")
        };
        let want = sink.volume_path(n + 1);
        assert_eq!(pst.location, want.display().to_string());
        assert_eq!(pst.kind, OutputKind::Archive);
        assert_eq!(csv.kind, OutputKind::ContentList);
        assert_eq!(
            csv.location,
            want.with_extension("csv").display().to_string()
        );
        assert_eq!(csv.messages, pst.messages);
        let size = std::fs::metadata(&want).unwrap().len();
        assert!(size <= options.volume_cap, "volume {n} is {size} bytes");
        assert_eq!(pst.bytes, Some(size));
        // The volume reads back with as many messages as the output says.
        let source = PstSource::new(&want);
        let mut count = 0;
        for f in source.list_folders().await.unwrap() {
            let mut s = source
                .stream(&f.path, &Filter::default(), None)
                .await
                .unwrap();
            while let Some(ev) = s.next().await {
                assert!(matches!(ev.unwrap(), SourceEvent::Message(_)));
                count += 1;
            }
        }
        assert_eq!(count, pst.messages, "messages read from {}", want.display());
        let rows = std::fs::read_to_string(want.with_extension("csv"))
            .unwrap()
            .lines()
            .count()
            - 1;
        assert_eq!(rows as u64, pst.messages, "content-list rows");
        total += count;
    }
    assert_eq!(total, written);
    // Restored from the last state of the finished run: the same outputs.
    let mut again = PstSink::with_options(&dest, options);
    again.open(Some(state)).await.unwrap();
    assert_eq!(again.finish().await.unwrap(), outputs);
    // A new run to the same destination with less mail: the old extra volumes go.
    let mut small = PstSink::with_options(&dest, WriterOptions::default());
    small.open(None).await.unwrap();
    small.write(&msgs[0]).await.unwrap();
    let out = small.finish().await.unwrap();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(!small.volume_path(2).exists());
    assert!(!small.volume_path(2).with_extension("csv").exists());
}

/// A `finish` interrupted after the renames but before the spool was deleted: resuming
/// from the last state runs `finish` again from the spool and gives the same outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_finish_runs_again_from_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.pst");
    let msgs = corpus::generated(30, 41);
    let mut sink = PstSink::new(&dest);
    sink.open(None).await.unwrap();
    for m in &msgs {
        sink.write(m).await.unwrap();
    }
    let state = sink.commit().await.unwrap();
    let spool = sink.spool_path();
    let saved = std::fs::read(&spool).unwrap();
    let outputs = sink.finish().await.unwrap();
    assert!(!spool.exists());
    // The crash: the spool is still there.
    std::fs::write(&spool, saved).unwrap();
    let mut again = PstSink::new(&dest);
    again.open(Some(state)).await.unwrap();
    let redone = again.finish().await.unwrap();
    assert!(!spool.exists());
    assert_eq!(redone.len(), outputs.len());
    for (a, b) in redone.iter().zip(&outputs) {
        assert_eq!(
            (&a.location, a.kind, a.messages),
            (&b.location, b.kind, b.messages)
        );
    }
    assert_eq!(redone[0].messages, msgs.len() as u64);
}
