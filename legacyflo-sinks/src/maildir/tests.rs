use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use legacyflo_core::{Filter, Flag, FolderPath, Message, Sink, Source, SourceEvent, WriteOutcome};
use legacyflo_sources::maildir::MaildirSource;

use super::MaildirSink;

fn msg(folder: &[&str], id: &str, raw: &[u8], flags: Vec<Flag>) -> Message {
    let mut m = Message::new(raw.to_vec(), FolderPath::new(folder.iter().copied()), id);
    m.flags = flags;
    m.internal_date = Utc
        .timestamp_opt(1_700_000_000 + id.len() as i64, 123_456_789)
        .single();
    m
}

async fn read_back(root: &Path) -> Vec<Message> {
    let source = Arc::new(MaildirSource::new(root));
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

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn write(sink: &mut MaildirSink, msgs: &[Message]) -> Vec<WriteOutcome> {
    let mut out = Vec::new();
    for m in msgs {
        sink.begin_folder(&m.folder).await.unwrap();
        out.push(sink.write(m).await.unwrap());
    }
    out
}

#[tokio::test]
async fn folders_flags_and_dates_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let msgs = vec![
        msg(
            &["INBOX"],
            "a",
            b"Subject: a\r\n\r\na\r\n",
            vec![Flag::Seen, Flag::Flagged],
        ),
        msg(
            &["Ünïcødé", "日本語", "Ordner & Co"],
            "b",
            b"Subject: b\n\nb",
            vec![Flag::Draft, Flag::Answered, Flag::Deleted],
        ),
        msg(&["Projekte", "v1.2 release"], "c", b"", vec![]),
        msg(
            &["a/b", "~x"],
            "d",
            b"\x00\xff",
            vec![Flag::Keyword("$Forwarded".into()), Flag::Seen],
        ),
        msg(&["INBOX", "Sub"], "e", b"x", vec![]),
    ];
    let mut sink = MaildirSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs).await;
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, 5);
    let mut dirs = files(&root);
    dirs.retain(|d| d.starts_with('.'));
    assert_eq!(
        dirs,
        [
            ".&ANw-n&AO8-c&APg-d&AOk-.&ZeVnLIqe-.Ordner &- Co",
            ".INBOX.Sub",
            ".Projekte.v1~2e2 release",
            ".a~2fb.~7ex",
        ]
    );
    assert!(root.join(".INBOX.Sub/maildirfolder").exists());
    let cur = files(&root.join(".&ANw-n&AO8-c&APg-d&AOk-.&ZeVnLIqe-.Ordner &- Co/cur"));
    assert_eq!(cur.len(), 1);
    assert!(
        cur[0].starts_with("1700000001.") && cur[0].ends_with(".legacyflo:2,DRT"),
        "{}",
        cur[0]
    );

    let back = read_back(&root).await;
    assert_eq!(back.len(), msgs.len());
    for m in &msgs {
        let b = back
            .iter()
            .find(|b| b.raw == m.raw && b.folder == m.folder)
            .unwrap();
        let system: Vec<Flag> = {
            let mut f: Vec<Flag> = m
                .flags
                .iter()
                .filter(|f| !matches!(f, Flag::Keyword(_)))
                .cloned()
                .collect();
            f.sort();
            f
        };
        assert_eq!(b.flags, system, "{}", m.source_id);
        assert_eq!(b.internal_date, m.internal_date, "{}", m.source_id);
    }
}

#[tokio::test]
async fn nothing_is_visible_before_commit_and_abort_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("md");
    let msgs: Vec<Message> = (0..4)
        .map(|i| {
            msg(
                &["INBOX"],
                &format!("m{i}"),
                format!("m{i}").as_bytes(),
                vec![],
            )
        })
        .collect();
    let mut sink = MaildirSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs[..2]).await;
    assert!(files(&root.join("cur")).is_empty());
    assert_eq!(files(&root.join("tmp")).len(), 2);
    assert!(read_back(&root).await.is_empty());
    sink.commit().await.unwrap();
    assert_eq!(files(&root.join("cur")).len(), 2);
    assert!(files(&root.join("tmp")).is_empty());
    write(&mut sink, &msgs[2..]).await;
    sink.abort().await.unwrap();
    assert!(files(&root.join("tmp")).is_empty());
    let again = write(&mut sink, &msgs[2..3]).await;
    assert!(
        matches!(&again[0], WriteOutcome::Written { .. }),
        "aborted messages are not duplicates: {again:?}"
    );
    sink.finish().await.unwrap();
    assert_eq!(read_back(&root).await.len(), 3);
}

#[tokio::test]
async fn a_crashed_run_leaves_nothing_and_redelivery_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("md");
    let msgs: Vec<Message> = (0..4)
        .map(|i| {
            msg(
                &["Sent"],
                &format!("m{i}"),
                format!("m{i}").as_bytes(),
                vec![],
            )
        })
        .collect();
    let mut sink = MaildirSink::new(&root);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs[..2]).await;
    let state = sink.commit().await.unwrap();
    write(&mut sink, &msgs[2..]).await;
    drop(sink);
    assert_eq!(files(&root.join(".Sent/tmp")).len(), 2);

    let mut sink = MaildirSink::new(&root);
    sink.open(Some(state)).await.unwrap();
    assert!(
        files(&root.join(".Sent/tmp")).is_empty(),
        "uncommitted files are removed"
    );
    let out = write(&mut sink, &msgs).await;
    assert_eq!(out[..2], [WriteOutcome::Duplicate, WriteOutcome::Duplicate]);
    assert!(
        out[2..]
            .iter()
            .all(|o| matches!(o, WriteOutcome::Written { .. }))
    );
    let outputs = sink.finish().await.unwrap();
    assert_eq!(outputs[0].messages, 4);
    assert_eq!(read_back(&root).await.len(), 4);

    // A later run into the same tree finds them too.
    let mut sink = MaildirSink::new(&root);
    sink.open(None).await.unwrap();
    assert!(
        write(&mut sink, &msgs)
            .await
            .iter()
            .all(|o| *o == WriteOutcome::Duplicate)
    );
}

#[tokio::test]
async fn a_folder_name_too_long_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = MaildirSink::new(dir.path());
    sink.open(None).await.unwrap();
    let long = "日本語".repeat(40);
    let m = msg(&[long.as_str()], "x", b"x", vec![]);
    let out = write(&mut sink, &[m]).await;
    assert!(
        matches!(&out[0], WriteOutcome::Rejected { reason } if reason.contains("255")),
        "{out:?}"
    );
}
