use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use legacyflo_core::{Filter, FolderPath, Message, Sink, Source, SourceEvent, WriteOutcome};
use legacyflo_sources::mbox::MboxSource;

use super::MboxSink;

fn msg(folder: &[&str], id: &str, raw: &[u8]) -> Message {
    let mut m = Message::new(raw.to_vec(), FolderPath::new(folder.iter().copied()), id);
    m.internal_date = Utc
        .timestamp_opt(1_600_000_000 + id.len() as i64, 0)
        .single();
    m
}

async fn read_back(root: &Path) -> Vec<Message> {
    let source = Arc::new(MboxSource::new(root));
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

async fn write(sink: &mut MboxSink, msgs: &[Message]) -> Vec<WriteOutcome> {
    let mut out = Vec::new();
    for m in msgs {
        sink.begin_folder(&m.folder).await.unwrap();
        out.push(sink.write(m).await.unwrap());
    }
    out
}

fn tricky() -> Vec<Message> {
    vec![
        msg(
            &["INBOX"],
            "1",
            b"From: a@b\n\nFrom here\n>From there\n>>From x\n",
        ),
        msg(&["INBOX"], "22", b"Subject: no eol\r\n\r\nend"),
        msg(&["INBOX"], "333", b""),
        msg(&["INBOX"], "4444", b"From the very first line\n"),
        msg(
            &["INBOX"],
            "55555",
            b"Subject: blank lines at the end\n\n\n\n",
        ),
        msg(
            &["INBOX"],
            "6",
            b"Subject: crlf\r\n\r\nx\r\n\r\nFrom y\r\n\r\n",
        ),
        msg(&["INBOX"], "77", b"\n"),
        msg(&["INBOX"], "888", b"\r"),
        msg(&["INBOX"], "9999", b"a\n\nFrom "),
        msg(&["Projekte", "Entwürfe"], "a", b"Subject: x\n\nx\n"),
        msg(
            &["a/b", ".hidden", "x.mbox", "y.sbd"],
            "b",
            b"Subject: y\n\ny\n",
        ),
    ]
}

#[tokio::test]
async fn tricky_messages_read_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mbox");
    let msgs = tricky();
    let mut sink = MboxSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs).await;
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, msgs.len() as u64);
    assert!(
        !root.join(".legacyflo").exists(),
        "the journal is removed at finish"
    );
    assert!(root.join("Projekte/Entwürfe.mbox").is_file());
    assert!(root.join("a%2Fb/%2Ehidden/x%2Embox/y%2Esbd.mbox").is_file());
    let back = read_back(&root).await;
    assert_eq!(back.len(), msgs.len());
    let inbox: Vec<&Message> = back
        .iter()
        .filter(|m| m.folder == FolderPath::inbox())
        .collect();
    for (b, m) in inbox.iter().zip(&msgs) {
        assert_eq!(b.raw, m.raw, "{}", m.source_id);
        assert_eq!(b.internal_date, m.internal_date);
    }
    for m in &msgs[9..] {
        assert!(
            back.iter().any(|b| b.folder == m.folder && b.raw == m.raw),
            "{}",
            m.folder
        );
    }
}

#[tokio::test]
async fn resume_truncates_and_deletes_what_came_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mbox");
    let a: Vec<Message> = (0..4)
        .map(|i| {
            msg(
                &["A"],
                &format!("a{i}"),
                format!("Subject: a{i}\n\n").as_bytes(),
            )
        })
        .collect();
    let b = msg(&["B", "C"], "b", b"Subject: b\n\n");
    let mut sink = MboxSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &a[..2]).await;
    let state = sink.commit().await.unwrap();
    let committed_len = std::fs::metadata(root.join("A.mbox")).unwrap().len();
    write(&mut sink, &a[2..]).await;
    write(&mut sink, std::slice::from_ref(&b)).await;
    drop(sink);
    assert!(root.join("B/C.mbox").exists());

    let mut sink = MboxSink::new(&root);
    sink.open(Some(state)).await.unwrap();
    assert_eq!(
        std::fs::metadata(root.join("A.mbox")).unwrap().len(),
        committed_len
    );
    assert!(
        !root.join("B/C.mbox").exists(),
        "a file created after the commit is removed"
    );
    let out = write(&mut sink, &a).await;
    assert_eq!(out[..2], [WriteOutcome::Duplicate, WriteOutcome::Duplicate]);
    assert!(
        out[2..]
            .iter()
            .all(|o| matches!(o, WriteOutcome::Written { .. })),
        "{out:?}"
    );
    write(&mut sink, std::slice::from_ref(&b)).await;
    let last = sink.commit().await.unwrap();
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, 5);
    let back = read_back(&root).await;
    assert_eq!(back.len(), 5);

    let mut again = MboxSink::new(&root);
    again.open(Some(last)).await.unwrap();
    assert_eq!(
        again.finish().await.unwrap(),
        outputs,
        "a finished run's state gives the same outputs"
    );
}

#[tokio::test]
async fn abort_restores_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mbox");
    let a: Vec<Message> = (0..3)
        .map(|i| {
            msg(
                &["A"],
                &format!("a{i}"),
                format!("Subject: a{i}\n\n").as_bytes(),
            )
        })
        .collect();
    let mut sink = MboxSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &a[..1]).await;
    sink.commit().await.unwrap();
    write(&mut sink, &a[1..]).await;
    write(&mut sink, &[msg(&["New"], "n", b"x\n")]).await;
    sink.abort().await.unwrap();
    assert!(!root.join("New.mbox").exists());
    let out = write(&mut sink, &a).await;
    assert_eq!(out[0], WriteOutcome::Duplicate);
    assert!(matches!(out[1], WriteOutcome::Written { .. }));
    sink.finish().await.unwrap();
    let back = read_back(&root).await;
    assert_eq!(
        back.iter().map(|m| m.raw.clone()).collect::<Vec<_>>(),
        a.iter().map(|m| m.raw.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_fresh_run_replaces_the_files_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mbox");
    for _ in 0..2 {
        let mut sink = MboxSink::new(&root);
        sink.open(None).await.unwrap();
        write(&mut sink, &tricky()[..3]).await;
        sink.finish().await.unwrap();
    }
    assert_eq!(read_back(&root).await.len(), 3);
}
