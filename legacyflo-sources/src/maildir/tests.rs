use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use futures::StreamExt;
use legacyflo_core::{Filter, Flag, FolderPath, Source, SourceEvent};

use super::MaildirSource;

fn put(path: &Path, bytes: &[u8], mtime: u64) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .unwrap();
}

fn maildir(dir: &Path) {
    for s in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(s)).unwrap();
    }
}

async fn items(
    source: &MaildirSource,
    folder: &FolderPath,
    after: Option<&str>,
) -> Vec<(String, String, Vec<Flag>, i64)> {
    let after = after.map(str::to_string);
    let mut s = source
        .stream(folder, &Filter::default(), after.as_ref())
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            SourceEvent::Message(i) => out.push((
                i.message.source_id.clone(),
                String::from_utf8_lossy(&i.message.raw).into_owned(),
                i.message.flags.clone(),
                i.message.internal_date.map(|d| d.timestamp()).unwrap_or(-1),
            )),
            SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
            SourceEvent::Unreadable { reason, .. } => panic!("{reason}"),
        }
    }
    out
}

#[tokio::test]
async fn maildir_plus_plus_and_fs_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    put(
        &root.join("cur/1700000002.M2.host:2,SF"),
        b"two",
        1_700_000_002,
    );
    put(&root.join("new/1700000001.M1.host"), b"one", 1_700_000_001);
    put(&root.join("tmp/1700000000.M0.host"), b"half-delivered", 0);
    put(&root.join("cur/.hidden"), b"x", 0);
    maildir(&root.join(".INBOX"));
    put(
        &root.join(".INBOX/cur/1700000003.M3.host:2,T"),
        b"three",
        1_700_000_003,
    );
    maildir(&root.join(".Projekte.Entw&APw-rfe"));
    put(
        &root.join(".Projekte.Entw&APw-rfe/cur/a:2,Dab"),
        b"draft",
        5,
    );
    put(
        &root.join(".Projekte.Entw&APw-rfe/dovecot-keywords"),
        b"0 $Forwarded\n1 Junk\n",
        0,
    );
    maildir(&root.join(".v1~2e2 release"));
    maildir(&root.join(".NoMaildir/x"));
    maildir(&root.join("Archiv/2023"));
    put(&root.join("Archiv/2023/cur/b"), b"fs layout", 6);
    maildir(&root.join(".&ZeVnLIqe-.Ordner &- Co"));

    let source = MaildirSource::new(root);
    let list = source.list_folders().await.unwrap();
    let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        names,
        [
            "Archiv/2023",
            "INBOX",
            "Projekte/Entwürfe",
            "v1.2 release",
            "日本語/Ordner & Co"
        ]
    );
    assert_eq!(list[1].messages, Some(3));

    let inbox = items(&source, &FolderPath::inbox(), None).await;
    assert_eq!(
        inbox,
        [
            (
                "1700000001.M1.host".to_string(),
                "one".to_string(),
                vec![],
                1_700_000_001
            ),
            (
                "1700000002.M2.host".to_string(),
                "two".to_string(),
                vec![Flag::Seen, Flag::Flagged],
                1_700_000_002
            ),
            (
                "1700000003.M3.host".to_string(),
                "three".to_string(),
                vec![Flag::Deleted],
                1_700_000_003
            ),
        ]
    );
    let rest = items(&source, &FolderPath::inbox(), Some("1700000001.M1.host")).await;
    assert_eq!(rest.len(), 2);
    // A position whose message has gone resumes after where it sorted.
    let rest = items(&source, &FolderPath::inbox(), Some("1700000001.M9.gone")).await;
    assert_eq!(
        rest.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["two", "three"]
    );
    assert!(
        items(&source, &FolderPath::inbox(), Some("1700000003.M3.host"))
            .await
            .is_empty()
    );

    let p = items(&source, &FolderPath::new(["Projekte", "Entwürfe"]), None).await;
    assert_eq!(
        p[0].2,
        [
            Flag::Draft,
            Flag::Keyword("$Forwarded".into()),
            Flag::Keyword("Junk".into())
        ]
    );
    assert_eq!(
        items(&source, &FolderPath::new(["Archiv", "2023"]), None).await[0].1,
        "fs layout"
    );
}

#[tokio::test]
async fn repeated_unique_parts_get_distinct_ids() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    put(&root.join("cur/x:2,S"), b"a", 1);
    put(&root.join("new/x"), b"b", 1);
    let source = MaildirSource::new(root);
    let all = items(&source, &FolderPath::inbox(), None).await;
    let ids: Vec<&str> = all.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(ids, ["x", "x#2"]);
    assert_eq!(
        items(&source, &FolderPath::inbox(), Some("x")).await.len(),
        1
    );
}

#[tokio::test]
async fn not_a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    assert!(MaildirSource::new(&file).list_folders().await.is_err());
    assert!(
        MaildirSource::new(dir.path().join("missing"))
            .list_folders()
            .await
            .is_err()
    );
}
