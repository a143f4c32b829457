#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_core::{FolderPath, Message, Sink, WriteOutcome};

use super::PstSink;
use super::spool::{RecordMeta, Spool, SpoolReader};

fn meta(folder: &str, id: &str) -> RecordMeta {
    RecordMeta {
        folder: vec![folder.to_string()],
        source_id: id.to_string(),
        read: true,
        flagged: false,
        date: Some(1_700_000_000),
    }
}

#[test]
fn spool_commit_rollback_resume() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.pst.partial.spool");
    let mut s = Spool::create(&p).unwrap();
    s.append(&meta("INBOX", "1"), b"one").unwrap();
    let st = s.commit().unwrap();
    assert_eq!(st.records, 1);
    s.append(&meta("INBOX", "2"), b"two").unwrap();
    assert!(s.contains(meta("INBOX", "2").key()));
    s.rollback().unwrap();
    assert!(!s.contains(meta("INBOX", "2").key()));
    assert!(s.contains(meta("INBOX", "1").key()));
    s.append(&meta("INBOX", "3"), &vec![7u8; 3 << 20]).unwrap(); // bigger than the buffer
    s.commit().unwrap();
    s.append(&meta("INBOX", "4"), b"four").unwrap();
    s.commit().unwrap();
    s.append(&meta("INBOX", "5"), b"uncommitted").unwrap();
    drop(s);
    let s = Spool::resume(&p, st).unwrap();
    assert!(s.contains(meta("INBOX", "1").key()));
    assert!(!s.contains(meta("INBOX", "3").key()));
    let mut r = SpoolReader::open(&p, s.committed().len).unwrap();
    let (m, n) = r.next_meta().unwrap().unwrap();
    assert_eq!(m, meta("INBOX", "1"));
    assert_eq!(r.read_raw(n).unwrap(), b"one");
    assert!(r.next_meta().unwrap().is_none());
}

#[test]
fn resume_rejects_a_short_spool() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    let mut s = Spool::create(&p).unwrap();
    s.append(&meta("A", "1"), b"x").unwrap();
    let mut st = s.commit().unwrap();
    st.len += 10;
    assert!(Spool::resume(&p, st).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_what_cannot_fit_and_needs_open() {
    let dir = tempfile::tempdir().unwrap();
    let opts = legacyflo_pst::WriterOptions {
        volume_cap: 4 << 20,
        ..Default::default()
    };
    let mut sink = PstSink::with_options(dir.path().join("x.pst"), opts);
    let m = Message::new(vec![b'a'; 2 << 20], FolderPath::inbox(), "1");
    assert!(sink.write(&m).await.is_err(), "write before open");
    sink.open(None).await.unwrap();
    assert!(matches!(
        sink.write(&m).await.unwrap(),
        WriteOutcome::Rejected { .. }
    ));
    let small = Message::new(&b"Subject: s\r\n\r\nx\r\n"[..], FolderPath::root(), "2");
    assert!(matches!(
        sink.write(&small).await.unwrap(),
        WriteOutcome::Written { .. }
    ));
    let out = sink.finish().await.unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].messages, 1);
    assert!(!sink.spool_path().exists());
    // A second finish returns the same outputs.
    assert_eq!(sink.finish().await.unwrap(), out);
}

/// Killed after `finish` removed the spool and before the engine saved the finished state
/// (found by the kill campaign, `scripts/chaos.sh`): the resumed sink belongs to a finished
/// run; the commit the engine makes before `finish` changes nothing instead of failing
/// (which made every re-run fail), and `finish` lists the same outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_restored_from_a_finished_run_commits_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.pst");
    let mut sink = PstSink::new(&dest);
    sink.open(None).await.unwrap();
    for i in 0..3 {
        let m = Message::new(
            format!("Subject: m{i}\r\nMessage-ID: <{i}@f>\r\n\r\nbody {i}\r\n").into_bytes(),
            FolderPath::inbox(),
            i.to_string(),
        );
        sink.begin_folder(&m.folder).await.unwrap();
        sink.write(&m).await.unwrap();
    }
    let state = sink.commit().await.unwrap();
    let out = sink.finish().await.unwrap();
    assert!(!sink.spool_path().exists() && dest.exists());
    let mut again = PstSink::new(&dest);
    again.open(Some(state.clone())).await.unwrap();
    assert_eq!(again.commit().await.unwrap(), state);
    assert_eq!(again.finish().await.unwrap(), out);
}
