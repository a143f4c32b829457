use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use legacyflo_core::{Filter, Flag, FolderPath, Message, Sink, Source, SourceEvent, WriteOutcome};
use legacyflo_sources::emlzip::EmlZipSource;

use super::ZipSink;
use super::sink::entry_name;

fn msg(folder: &[&str], id: &str, raw: &[u8]) -> Message {
    let mut m = Message::new(raw.to_vec(), FolderPath::new(folder.iter().copied()), id);
    m.internal_date = Utc.with_ymd_and_hms(2023, 1, 2, 3, 4, 5).single();
    m
}

fn corpus() -> Vec<Message> {
    let mut v = Vec::new();
    for i in 0..8 {
        let folder: &[&str] = if i % 3 == 0 { &["Sent"] } else { &["INBOX"] };
        let mut m = msg(
            folder,
            &format!("id{i}"),
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        );
        if i % 2 == 0 {
            m.flags = vec![Flag::Seen, Flag::Keyword("$Label1".into())];
        }
        v.push(m);
    }
    v
}

async fn write(sink: &mut ZipSink, msgs: &[Message]) -> Vec<WriteOutcome> {
    let mut out = Vec::new();
    for m in msgs {
        sink.begin_folder(&m.folder).await.unwrap();
        out.push(sink.write(m).await.unwrap());
    }
    out
}

fn names(path: &Path) -> Vec<String> {
    let a = ::zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
    a.file_names().map(|n| n.unwrap().into_owned()).collect()
}

fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

async fn read_back(path: &Path) -> Vec<Message> {
    let source = Arc::new(EmlZipSource::new(path));
    let mut out = Vec::new();
    for f in source.list_folders().await.unwrap() {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .unwrap();
        while let Some(ev) = s.next().await {
            match ev.unwrap() {
                SourceEvent::Message(item) => out.push(item.message),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable { reason, .. } => panic!("{reason}"),
            }
        }
    }
    out
}

#[tokio::test]
async fn commit_leaves_a_valid_archive_and_resume_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.zip");
    let partial = dir.path().join("out.zip.partial");
    let csv_partial = dir.path().join("out.csv.partial");
    let msgs = corpus();

    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs[..5]).await;
    let state = sink.commit().await.unwrap();
    assert_eq!(
        names(&partial),
        [
            "Sent/000001.eml",
            "INBOX/000001.eml",
            "INBOX/000002.eml",
            "Sent/000002.eml",
            "INBOX/000003.eml"
        ]
    );
    assert_eq!(csv_rows(&csv_partial), 5);
    write(&mut sink, &msgs[5..]).await;
    drop(sink); // crash: the uncommitted entries overwrote the central directory

    let mut sink = ZipSink::new(&dest);
    sink.open(Some(state)).await.unwrap();
    assert_eq!(names(&partial).len(), 5, "the committed archive is back");
    assert_eq!(csv_rows(&csv_partial), 5);
    let again = write(&mut sink, &msgs[5..]).await;
    assert!(
        again
            .iter()
            .all(|o| matches!(o, WriteOutcome::Written { .. })),
        "{again:?}"
    );
    assert_eq!(
        write(&mut sink, &msgs[..1]).await,
        [WriteOutcome::Duplicate]
    );
    let last = sink.commit().await.unwrap();
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].messages, 8);
    assert_eq!(
        outputs[0].bytes,
        Some(std::fs::metadata(&dest).unwrap().len())
    );
    assert_eq!(outputs[1].messages, 8);
    assert!(!partial.exists());
    assert_eq!(csv_rows(&dir.path().join("out.csv")), 8);
    assert_eq!(
        names(&dest)[5..],
        ["INBOX/000004.eml", "Sent/000003.eml", "INBOX/000005.eml"]
    );
    assert!(
        !dir.path().join("out.zip.partial.cd").exists(),
        "the central-directory copy is removed at finish"
    );

    let back = read_back(&dest).await;
    assert_eq!(back.len(), 8);
    for m in &msgs {
        let found = back
            .iter()
            .find(|b| b.raw == m.raw && b.folder == m.folder)
            .unwrap_or_else(|| panic!("{} missing", m.source_id));
        assert_eq!(found.flags, m.flags);
        assert_eq!(found.internal_date, m.internal_date);
    }

    // A sink restored from the finished run's last state returns the same outputs, after
    // the commit the engine makes before every finish (which changes nothing).
    let mut finished = ZipSink::new(&dest);
    finished.open(Some(last.clone())).await.unwrap();
    assert_eq!(finished.commit().await.unwrap(), last);
    assert_eq!(finished.finish().await.unwrap(), outputs);
}

/// Killed inside `finish` after the archive was renamed to its final name and before the
/// content list was (found by the kill campaign, `scripts/chaos.sh`): the resume completes
/// the finish instead of failing on the missing content list at every re-run.
#[tokio::test]
async fn a_crash_between_the_renames_of_finish_is_completed_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.zip");
    let msgs = corpus();
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs).await;
    let state = sink.commit().await.unwrap();
    drop(sink);
    // The first step of finish: the committed archive (a complete ZIP) renamed.
    std::fs::rename(dir.path().join("out.zip.partial"), &dest).unwrap();
    assert!(dir.path().join("out.csv.partial").exists());

    let mut sink = ZipSink::new(&dest);
    sink.open(Some(state.clone())).await.unwrap();
    assert_eq!(
        sink.commit().await.unwrap(),
        state,
        "the engine commits before finish"
    );
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].messages, 8);
    assert_eq!(
        outputs[1].location,
        dir.path().join("out.csv").display().to_string()
    );
    assert_eq!(outputs[1].messages, 8);
    assert_eq!(csv_rows(&dir.path().join("out.csv")), 8);
    assert!(!dir.path().join("out.csv.partial").exists());
    assert!(!dir.path().join("out.zip.partial.cd").exists());
    assert_eq!(names(&dest).len(), 8);
    // Resuming the finished request again gives the same outputs.
    let mut again = ZipSink::new(&dest);
    again.open(Some(state)).await.unwrap();
    assert_eq!(again.finish().await.unwrap(), outputs);
}

#[tokio::test]
async fn abort_restores_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.zip");
    let msgs = corpus();
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs[..3]).await;
    sink.commit().await.unwrap();
    write(&mut sink, &msgs[3..6]).await;
    sink.abort().await.unwrap();
    assert_eq!(names(&dir.path().join("a.zip.partial")).len(), 3);
    // The aborted messages are not duplicates, and the ordinals continue from the commit.
    let out = write(&mut sink, &msgs[3..4]).await;
    assert_eq!(
        out,
        [WriteOutcome::Written {
            id: Some("Sent/000002.eml".into())
        }]
    );
    sink.finish().await.unwrap();
    assert_eq!(names(&dest).len(), 4);
    assert_eq!(csv_rows(&dir.path().join("a.csv")), 4);
}

#[tokio::test]
async fn an_empty_archive_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("empty.zip");
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, 0);
    assert!(names(&dest).is_empty());
}

#[tokio::test]
async fn zip64_with_more_than_65535_entries() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("many.zip");
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    let folder = FolderPath::inbox();
    sink.begin_folder(&folder).await.unwrap();
    let n = 70_000u32;
    let mut state = None;
    for i in 0..n {
        let m = Message::new(
            format!("Subject: {i}\r\n\r\n{i}\r\n").into_bytes(),
            folder.clone(),
            i.to_string(),
        );
        assert!(matches!(
            sink.write(&m).await.unwrap(),
            WriteOutcome::Written { .. }
        ));
        if i == 66_000 {
            state = Some(sink.commit().await.unwrap());
        }
    }
    drop(sink);
    let mut sink = ZipSink::new(&dest);
    sink.open(state).await.unwrap();
    let rest: Vec<Message> = (66_001..n)
        .map(|i| {
            Message::new(
                format!("Subject: {i}\r\n\r\n{i}\r\n").into_bytes(),
                folder.clone(),
                i.to_string(),
            )
        })
        .collect();
    let m0 = Message::new(&b"Subject: 0\r\n\r\n0\r\n"[..], folder.clone(), "0");
    assert_eq!(sink.write(&m0).await.unwrap(), WriteOutcome::Duplicate);
    for m in &rest {
        sink.write(m).await.unwrap();
    }
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, u64::from(n));

    let mut f = File::open(&dest).unwrap();
    assert_eq!(super::format::entry_count(&mut f).unwrap(), u64::from(n));
    let mut a = ::zip::ZipArchive::new(File::open(&dest).unwrap()).unwrap();
    assert_eq!(a.len(), n as usize);
    for i in [0usize, 65_535, 65_536, 69_999] {
        let mut e = a.by_index(i).unwrap();
        assert_eq!(e.name().unwrap(), format!("INBOX/{:06}.eml", i + 1));
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, format!("Subject: {i}\r\n\r\n{i}\r\n"));
    }
}

#[test]
fn entry_names_are_escaped_and_ordered() {
    assert_eq!(entry_name(&FolderPath::inbox(), 1), "INBOX/000001.eml");
    assert_eq!(
        entry_name(&FolderPath::new(["a/b", "..", "Entwürfe", "x.mbox"]), 12),
        "a%2Fb/%2E%2E/Entwürfe/x%2Embox/000012.eml"
    );
    assert_eq!(
        entry_name(&FolderPath::new(["A"]), 1_234_567),
        "A/1234567.eml"
    );
    assert_eq!(entry_name(&FolderPath::root(), 3), "000003.eml");
}

#[tokio::test]
async fn the_central_directory_copy_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("c.zip");
    let log = dir.path().join("c.zip.partial.cd");
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    write(&mut sink, &corpus()[..2]).await;
    let state = sink.commit().await.unwrap();
    drop(sink);
    let good = std::fs::read(&log).unwrap();
    std::fs::write(&log, &good[..10]).unwrap();
    let err = ZipSink::new(&dest)
        .open(Some(state.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let mut bad = good.clone();
    bad[0] ^= 0xff;
    std::fs::write(&log, &bad).unwrap();
    let err = ZipSink::new(&dest)
        .open(Some(state.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("central directory"), "{err}");
    std::fs::write(&log, &good).unwrap();
    ZipSink::new(&dest).open(Some(state)).await.unwrap();
}

#[tokio::test]
async fn too_many_keywords_are_dropped_from_the_comment() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("k.zip");
    let mut sink = ZipSink::new(&dest);
    sink.open(None).await.unwrap();
    let mut m = msg(&["INBOX"], "k", b"Subject: k\r\n\r\n");
    m.flags = (0..8000)
        .map(|i| Flag::Keyword(format!("kw{i:05}")))
        .collect();
    m.flags.push(Flag::Seen);
    sink.write(&m).await.unwrap();
    sink.finish().await.unwrap();
    let back = read_back(&dest).await;
    assert_eq!(back[0].flags, [Flag::Seen]);
}
