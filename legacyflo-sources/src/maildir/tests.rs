use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures::StreamExt;
use legacyflo_core::spill::SpillLimits;
use legacyflo_core::{Engine, Filter, Flag, FolderPath, RunStatus, Source, SourceEvent};
use legacyflo_testkit::memory::MemorySink;

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
    put(&root.join(".NoMaildir/x/cur/n"), b"hidden tree", 7);
    maildir(&root.join("Archiv/2023"));
    put(&root.join("Archiv/2023/cur/b"), b"fs layout", 6);
    maildir(&root.join(".&ZeVnLIqe-.Ordner &- Co"));

    let source = MaildirSource::new(root);
    let list = source.list_folders().await.unwrap();
    let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        names,
        [
            ".NoMaildir/x",
            "Archiv/2023",
            "INBOX",
            "Projekte/Entwürfe",
            "v1.2 release",
            "日本語/Ordner & Co"
        ]
    );
    // A Maildir outside both namings is read, with a note; `.INBOX` merges with the root.
    assert_eq!(list[0].messages, Some(1));
    assert!(
        list[0].notes[0].contains("`.NoMaildir/x` is not a folder"),
        "{:?}",
        list[0].notes
    );
    assert_eq!(list[2].messages, Some(3));
    assert!(list[2].notes[0].contains("`.INBOX`"), "{:?}", list[2].notes);

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

/// Every event of a folder.
async fn events(source: &MaildirSource, folder: &FolderPath) -> Vec<SourceEvent> {
    let mut s = source
        .stream(folder, &Filter::default(), None)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        out.push(ev.unwrap());
    }
    out
}

const MARKER: &[u8] = b"MARKER-SECRET-OUTSIDE-THE-ROOT-8c1f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbolic_links_are_never_followed_and_each_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, MARKER).unwrap();
    // A whole Maildir outside the root, full of mail that must not be read.
    let elsewhere = dir.path().join("elsewhere");
    maildir(&elsewhere);
    put(&elsewhere.join("cur/o1:2,S"), MARKER, 1);
    maildir(&root);
    put(&root.join("cur/1:2,S"), b"Subject: ok\r\n\r\nmail\r\n", 1);
    symlink(&outside, root.join("cur/2-file-link:2,S")).unwrap();
    symlink("/proc/self/environ", root.join("cur/3-environ")).unwrap();
    symlink("/etc/shadow", root.join("new/4-shadow")).unwrap();
    symlink(dir.path().join("nowhere"), root.join("new/5-dangling")).unwrap();
    symlink(&elsewhere, root.join(".Linked")).unwrap();
    maildir(&root.join(".Sub"));
    put(&root.join(".Sub/cur/s1"), b"Subject: sub\r\n\r\n", 2);
    std::fs::remove_dir(root.join(".Sub/new")).unwrap();
    symlink(elsewhere.join("cur"), root.join(".Sub/new")).unwrap();
    maildir(&root.join("Archiv"));
    symlink("..", root.join("Archiv/loop")).unwrap();
    std::fs::write(root.join("dovecot-keywords-target"), b"0 Secret\n").unwrap();
    symlink("/proc/self/environ", root.join("dovecot-keywords")).unwrap();

    let source = Arc::new(MaildirSource::new(&root));
    let list = source.list_folders().await.unwrap();
    let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(names, ["Archiv", "Archiv/loop", "INBOX", "Linked", "Sub"]);
    let skipped_at_listing: Vec<(String, String)> = list
        .iter()
        .flat_map(|f| {
            f.skipped
                .iter()
                .map(|s| (s.source_id.clone(), s.reason.clone()))
        })
        .collect();
    let ids: Vec<&str> = skipped_at_listing.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, ["Archiv/loop", ".Linked", ".Sub/new"]);
    for (id, reason) in &skipped_at_listing {
        assert!(reason.contains("symbolic link"), "{id}: {reason}");
    }
    assert!(
        skipped_at_listing[1]
            .1
            .contains(&elsewhere.display().to_string()),
        "the reason names the link's target: {}",
        skipped_at_listing[1].1
    );
    assert!(
        list[2].notes.iter().any(|n| n.contains("dovecot-keywords")),
        "{:?}",
        list[2].notes
    );

    let inbox = events(&source, &FolderPath::inbox()).await;
    let kinds: Vec<(String, bool)> = inbox
        .iter()
        .map(|e| match e {
            SourceEvent::Message(i) => (i.message.source_id.clone(), true),
            SourceEvent::Unreadable {
                source_id, reason, ..
            } => {
                assert!(reason.contains("symbolic link"), "{source_id}: {reason}");
                (source_id.clone(), false)
            }
            SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("1".to_string(), true),
            ("2-file-link".to_string(), false),
            ("3-environ".to_string(), false),
            ("4-shadow".to_string(), false),
            ("5-dangling".to_string(), false),
        ]
    );

    // The whole run: nothing outside the root is archived, every link is a skip, exit 3.
    let environ = std::fs::read("/proc/self/environ").unwrap();
    let sink = MemorySink::new();
    let res = Engine::new("MAILDIR-S3-ZIP", source.clone(), Box::new(sink.clone()))
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.report.status, RunStatus::DoneWithSkips);
    let got = sink.committed();
    assert_eq!(got.len(), 2, "the two real messages");
    for m in &got {
        assert!(!m.raw.windows(MARKER.len()).any(|w| w == MARKER));
        assert!(environ.is_empty() || m.raw != environ[..]);
        assert!(m.flags.iter().all(|f| f != &Flag::Keyword("Secret".into())));
    }
    assert_eq!(res.report.totals().skipped, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_loops_and_links_to_the_parent_are_not_walked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    // A chain of 20 directories, each with two links back to its parent: following them
    // would be exponential (2^20 paths) or endless.
    let mut d = root.to_path_buf();
    for i in 0..20 {
        d = d.join(format!("d{i}"));
        maildir(&d);
        put(&d.join("cur/m"), b"Subject: x\r\n\r\n", 1);
        symlink("..", d.join("up1")).unwrap();
        symlink("..", d.join("up2")).unwrap();
    }
    symlink("sub/loop", root.join("self-loop")).unwrap();
    let started = Instant::now();
    let list = MaildirSource::new(root).list_folders().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // The root, 20 real folders, and one entry per link (40 + 1) holding the skip.
    assert_eq!(list.len(), 1 + 20 + 41);
    let real: u64 = list.iter().filter_map(|f| f.messages).sum();
    assert_eq!(real, 20);
    let skips: usize = list.iter().map(|f| f.skipped.len()).sum();
    assert_eq!(skips, 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_link_after_listing_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    let outside = dir.path().join("secret.txt");
    std::fs::write(&outside, MARKER).unwrap();
    maildir(&root);
    for i in 0..40 {
        put(
            &root.join(format!("cur/{i:03}:2,S")),
            b"Subject: x\r\n\r\nbody\r\n",
            1,
        );
    }
    let source = MaildirSource::new(&root);
    let mut s = source
        .stream(&FolderPath::inbox(), &Filter::default(), None)
        .await
        .unwrap();
    // The reader has listed the folder and runs at most a channel's length ahead.
    let first = s.next().await.unwrap().unwrap();
    assert!(matches!(first, SourceEvent::Message(_)));
    let victim = root.join("cur/030:2,S");
    std::fs::remove_file(&victim).unwrap();
    symlink(&outside, &victim).unwrap();
    let mut unreadable = Vec::new();
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            SourceEvent::Message(i) => {
                assert!(
                    !i.message.raw.windows(MARKER.len()).any(|w| w == MARKER),
                    "{} read through a link",
                    i.message.source_id
                );
            }
            SourceEvent::Unreadable {
                source_id, reason, ..
            } => unreadable.push((source_id, reason)),
            SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
        }
    }
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(unreadable[0].0, "030");
    assert!(
        unreadable[0].1.contains("symbolic link"),
        "{}",
        unreadable[0].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_files_are_found_and_deleted_ones_are_expunged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    for i in 0..40 {
        put(
            &root.join(format!("new/{i:03}.M1.host")),
            format!("Subject: {i}\r\n\r\n").as_bytes(),
            1,
        );
    }
    let source = MaildirSource::new(root);
    let mut s = source
        .stream(&FolderPath::inbox(), &Filter::default(), None)
        .await
        .unwrap();
    let mut seen = vec![s.next().await.unwrap().unwrap()];
    // A live server: it moves one message to cur/ and marks it seen, and expunges another.
    std::fs::rename(
        root.join("new/030.M1.host"),
        root.join("cur/030.M1.host:2,S"),
    )
    .unwrap();
    std::fs::remove_file(root.join("new/031.M1.host")).unwrap();
    while let Some(ev) = s.next().await {
        seen.push(ev.unwrap());
    }
    assert_eq!(seen.len(), 40, "each listed message accounted for once");
    let SourceEvent::Message(moved) = &seen[30] else {
        panic!("{:?}", seen[30])
    };
    assert_eq!(moved.message.source_id, "030.M1.host");
    assert_eq!(&moved.message.raw[..], b"Subject: 30\r\n\r\n");
    assert_eq!(moved.message.flags, [Flag::Seen], "flags of its new name");
    assert!(
        matches!(&seen[31], SourceEvent::Expunged { source_id, position } if source_id == "031.M1.host" && position == "031.M1.host"),
        "{:?}",
        seen[31]
    );
    assert!(
        seen.iter()
            .enumerate()
            .all(|(i, e)| i == 31 || matches!(e, SourceEvent::Message(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_maildir_plus_plus_names_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    for (i, name) in [
        ".foo", "..foo", "...", ".a.b", ".a..b", ".a.", "a/b", ".x&AC4-y", ".x~2ey",
    ]
    .iter()
    .enumerate()
    {
        maildir(&root.join(name));
        put(
            &root.join(name).join("cur").join(format!("m{i}")),
            name.as_bytes(),
            1,
        );
    }
    let source = MaildirSource::new(root);
    let list = source.list_folders().await.unwrap();
    let got: Vec<(String, Option<u64>)> = list
        .iter()
        .map(|f| (f.path.to_string(), f.messages))
        .collect();
    let want: Vec<(String, Option<u64>)> = [
        ("...", 1),
        ("..foo", 1),
        (".a.", 1),
        (".a..b", 1),
        ("INBOX", 0),
        ("a/b", 1),
        ("a/b (2)", 1),
        ("foo", 1),
        ("x.y", 1),
        ("x.y (2)", 1),
    ]
    .iter()
    .map(|(n, c)| (n.to_string(), Some(*c)))
    .collect();
    assert_eq!(got, want);
    for f in &list {
        let expect_note =
            f.path.to_string().starts_with('.') || f.path.to_string().ends_with("(2)");
        assert_eq!(
            !f.notes.is_empty(),
            expect_note,
            "{}: {:?}",
            f.path,
            f.notes
        );
        // Every folder streams exactly its own directory.
        let evs = events(&source, &f.path).await;
        assert_eq!(evs.len() as u64, f.messages.unwrap_or(0), "{}", f.path);
    }
    let kept_apart = list
        .iter()
        .find(|f| f.path.to_string() == "a/b (2)")
        .unwrap();
    assert!(
        kept_apart.notes[0].contains("kept apart"),
        "{:?}",
        kept_apart.notes
    );
}

#[tokio::test]
async fn a_message_over_the_limit_is_reported_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    maildir(root);
    put(&root.join("cur/big"), &vec![b'x'; 5000], 1);
    put(&root.join("cur/small"), b"Subject: s\r\n\r\n", 1);
    let source = MaildirSource::new(root).with_limits(SpillLimits {
        max_bytes: 4096,
        memory_threshold: 1024,
    });
    let evs = events(&source, &FolderPath::inbox()).await;
    assert!(
        matches!(&evs[0], SourceEvent::Unreadable { source_id, reason, .. } if source_id == "big" && reason.contains("limit of 4096 bytes")),
        "{:?}",
        evs[0]
    );
    assert!(matches!(&evs[1], SourceEvent::Message(_)));
}

#[tokio::test]
async fn a_root_given_as_a_link_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    maildir(&real);
    put(&real.join("cur/m"), b"Subject: m\r\n\r\n", 1);
    symlink(&real, dir.path().join("link")).unwrap();
    let source = MaildirSource::new(dir.path().join("link"));
    let evs = events(&source, &FolderPath::inbox()).await;
    assert!(matches!(&evs[..], [SourceEvent::Message(_)]), "{evs:?}");
}
