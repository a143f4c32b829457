//! A message the PST writer refuses while the sink builds the PST (in `finish`) reaches
//! the run report: the folder's stored count drops, its skipped count rises, and the
//! reason names the writer's refusal. The other messages are in the PST.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use legacyflo_core::{Engine, FolderPath, Message, RunStatus};
use legacyflo_pst::PstReader;
use legacyflo_sinks::pst::PstSink;
use legacyflo_testkit::memory::MemorySource;

/// A message with more attachments than one node's subnode tree can index
/// (340 SLBLOCK entries x 510 SIBLOCK entries), which the writer refuses as too large.
fn too_many_parts() -> Vec<u8> {
    let mut m = b"From: a@example.com\r\nSubject: too many parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..180_000 {
        m.extend_from_slice(b"--b\r\nContent-Type: application/x-y\r\n\r\nz\r\n");
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_in_finish_is_reported_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.pst");
    let folder = FolderPath::new(["Archiv"]);
    let ok = |i: u32| {
        Message::new(
            format!("From: a@example.com\r\nSubject: fine {i}\r\n\r\nbody {i}\r\n").into_bytes(),
            folder.clone(),
            format!("ok{i}"),
        )
    };
    let bad = Message::new(too_many_parts(), folder.clone(), "bad");
    let bad_size = bad.size();
    let source = Arc::new(MemorySource::new([ok(1), bad, ok(2)]));
    let result = Engine::new("MBOX-S3-PST", source, Box::new(PstSink::new(&dest)))
        .run()
        .await;
    assert!(result.error.is_none(), "{:?}", result.error);
    let report = result.report;
    assert_eq!(report.status, RunStatus::DoneWithSkips);
    let f = report
        .folders
        .iter()
        .find(|f| f.folder == folder)
        .expect("folder in report");
    assert_eq!(f.messages, 2);
    assert_eq!(f.skipped, 1);
    assert_eq!(f.failures.len(), 1);
    assert_eq!(f.failures[0].source_id, "bad");
    assert!(
        f.failures[0].reason.contains("PST writer refused"),
        "{}",
        f.failures[0].reason
    );
    let t = report.totals();
    assert_eq!(t.messages, 2);
    assert!(t.bytes < bad_size);
    let r = PstReader::open(&dest).unwrap();
    let mut n = 0;
    for pf in r.folders().unwrap() {
        n += r.messages(&pf).unwrap().count();
    }
    assert_eq!(n, 2);
}
