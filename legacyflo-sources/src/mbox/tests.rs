use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use legacyflo_core::spill::SpillLimits;
use legacyflo_core::{Engine, ErrorKind, Filter, Flag, FolderPath, RunStatus, Source, SourceEvent};
use legacyflo_testkit::memory::MemorySink;

use super::MboxSource;

const TWO: &[u8] = b"From a@b Thu Nov 21 10:00:00 2024\nSubject: 1\nStatus: RO\nX-Status: F\n\n>From quoted\n\nFrom b@c Fri Nov 22 11:00:00 2024\nSubject: 2\n\nlast\n\n";

fn put(path: &Path, bytes: &[u8]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

async fn events(source: &MboxSource, folder: &[&str], after: Option<&str>) -> Vec<SourceEvent> {
    let after = after.map(str::to_string);
    let mut s = source
        .stream(
            &FolderPath::new(folder.iter().copied()),
            &Filter::default(),
            after.as_ref(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        out.push(ev.unwrap());
    }
    out
}

fn raws(evs: &[SourceEvent]) -> Vec<Vec<u8>> {
    evs.iter()
        .filter_map(|e| match e {
            SourceEvent::Message(i) => Some(i.message.raw.to_vec()),
            SourceEvent::Unreadable { .. } | SourceEvent::Expunged { .. } => None,
        })
        .collect()
}

async fn folders(source: &MboxSource) -> Vec<String> {
    source
        .list_folders()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path.to_string())
        .collect()
}

#[tokio::test]
async fn a_single_file_is_one_folder_named_after_its_stem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("INBOX.mbox");
    put(&file, TWO);
    let source = MboxSource::new(&file);
    assert_eq!(folders(&source).await, ["INBOX"]);
    let evs = events(&source, &["INBOX"], None).await;
    assert_eq!(
        raws(&evs),
        [
            b"Subject: 1\nStatus: RO\nX-Status: F\n\nFrom quoted\n".to_vec(),
            b"Subject: 2\n\nlast\n".to_vec()
        ]
    );
    let SourceEvent::Message(first) = &evs[0] else {
        panic!()
    };
    assert_eq!(first.message.source_id, "0");
    assert_eq!(first.message.flags, [Flag::Seen, Flag::Flagged]);
    assert_eq!(
        first.message.internal_date.unwrap().to_rfc3339(),
        "2024-11-21T10:00:00+00:00"
    );
    let SourceEvent::Message(second) = &evs[1] else {
        panic!()
    };
    assert_eq!(first.position, second.message.source_id);
    assert_eq!(second.position, TWO.len().to_string());

    // Resume after the first message, and after the last.
    let rest = events(&source, &["INBOX"], Some(&first.position)).await;
    assert_eq!(raws(&rest), [b"Subject: 2\n\nlast\n".to_vec()]);
    assert!(
        events(&source, &["INBOX"], Some(&second.position))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_position_that_is_not_a_message_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.mbox");
    put(&file, TWO);
    let source = MboxSource::new(&file);
    let p = "5".to_string();
    let mut s = source
        .stream(&FolderPath::new(["x"]), &Filter::default(), Some(&p))
        .await
        .unwrap();
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(s.next().await.is_none(), "nothing after an error");
    let bad = "x".to_string();
    assert!(
        source
            .stream(&FolderPath::new(["x"]), &Filter::default(), Some(&bad))
            .await
            .is_err()
    );
    let missing = source
        .stream(&FolderPath::new(["nope"]), &Filter::default(), None)
        .await;
    assert_eq!(missing.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
}

#[tokio::test]
async fn a_thunderbird_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(&root.join("Inbox"), TWO);
    put(&root.join("Inbox.msf"), b"// mork index");
    put(&root.join("Inbox.sbd/Sub"), TWO);
    put(&root.join("Inbox.sbd/Sub.sbd/Deeper.mbox"), TWO);
    put(&root.join("Dr. Who"), TWO);
    put(&root.join("Projekte/Entwürfe.mbox"), TWO);
    put(&root.join("Apple.mbox/mbox"), TWO);
    put(&root.join("Apple.mbox/Info.plist"), b"<plist/>");
    put(&root.join(".hidden.mbox"), TWO);
    put(&root.join("notes.txt"), b"not mail");
    put(&root.join("Empty.mbox"), b"");
    put(&root.join("a%2Fb.mbox"), TWO);
    let source = MboxSource::new(root);
    assert_eq!(
        folders(&source).await,
        [
            "Apple",
            "Dr. Who",
            "Empty",
            "Inbox",
            "Inbox/Sub",
            "Inbox/Sub/Deeper",
            "Projekte/Entwürfe",
            "a/b"
        ]
    );
    let list = source.list_folders().await.unwrap();
    assert_eq!(
        list.iter()
            .find(|f| f.path.to_string() == "a/b")
            .unwrap()
            .path
            .segments(),
        ["a/b"]
    );
    assert_eq!(
        raws(&events(&source, &["Inbox", "Sub", "Deeper"], None).await).len(),
        2
    );
    assert!(events(&source, &["Empty"], None).await.is_empty());
}

#[tokio::test]
async fn junk_before_the_first_from_line_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("j.mbox");
    let mut data = b"garbage line\n\n".to_vec();
    data.extend_from_slice(TWO);
    put(&file, &data);
    let source = MboxSource::new(&file);
    let evs = events(&source, &["j"], None).await;
    assert_eq!(evs.len(), 3);
    let SourceEvent::Unreadable {
        source_id,
        position,
        reason,
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!((source_id.as_str(), position.as_str()), ("0", "14"));
    assert!(reason.contains("14 bytes"), "{reason}");
    let rest = events(&source, &["j"], Some(position)).await;
    assert_eq!(rest.len(), 2);
}

#[tokio::test]
async fn a_zip_of_mbox_files() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("export.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.add_directory("Mail/", o).unwrap();
        z.start_file("Mail/Inbox", o).unwrap();
        z.write_all(TWO).unwrap();
        z.start_file("Mail/Inbox.sbd/Sent.mbox", o).unwrap();
        z.write_all(TWO).unwrap();
        z.start_file("Mail/Inbox.msf", o).unwrap();
        z.write_all(b"index").unwrap();
        z.start_file("__MACOSX/Mail/._Inbox", o).unwrap();
        z.write_all(b"From junk").unwrap();
        z.finish().unwrap();
    }
    let source = MboxSource::new(&zip_path);
    assert_eq!(folders(&source).await, ["Mail/Inbox", "Mail/Inbox/Sent"]);
    let evs = events(&source, &["Mail", "Inbox", "Sent"], None).await;
    assert_eq!(raws(&evs).len(), 2);
    let SourceEvent::Message(first) = &evs[0] else {
        panic!()
    };
    let rest = events(&source, &["Mail", "Inbox", "Sent"], Some(&first.position)).await;
    assert_eq!(raws(&rest), [b"Subject: 2\n\nlast\n".to_vec()]);
}

const MARKER: &[u8] = b"MARKER-SECRET-OUTSIDE-THE-ROOT-51d0";

/// An mbox file holding [`MARKER`], to put outside the tree.
fn secret_mbox() -> Vec<u8> {
    let mut secret = b"From x Thu Nov 21 10:00:00 2024\nSubject: ".to_vec();
    secret.extend_from_slice(MARKER);
    secret.extend_from_slice(b"\n\n");
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_a_tree_are_never_followed_and_each_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Mail");
    let outside = dir.path().join("outside.mbox");
    put(&outside, &secret_mbox());
    put(&root.join("Inbox"), TWO);
    symlink(&outside, root.join("Linked.mbox")).unwrap();
    symlink("/proc/self/environ", root.join("Environ")).unwrap();
    symlink("/etc/shadow", root.join("Shadow")).unwrap();
    symlink(dir.path().join("nowhere"), root.join("Dangling.mbox")).unwrap();
    put(&root.join("Inbox.sbd/Sub"), TWO);
    symlink("..", root.join("Inbox.sbd/loop")).unwrap();
    symlink(".", root.join("Inbox.sbd/self")).unwrap();
    let source = Arc::new(MboxSource::new(&root));
    let started = Instant::now();
    let list = source.list_folders().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let got: Vec<(String, usize)> = list
        .iter()
        .map(|f| (f.path.to_string(), f.skipped.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("Dangling".to_string(), 1),
            ("Environ".to_string(), 1),
            ("Inbox".to_string(), 0),
            ("Inbox/Sub".to_string(), 0),
            ("Inbox/loop".to_string(), 1),
            ("Inbox/self".to_string(), 1),
            ("Linked".to_string(), 1),
            ("Shadow".to_string(), 1),
        ]
    );
    for f in &list {
        for s in &f.skipped {
            assert!(
                s.reason.contains("symbolic link"),
                "{}: {}",
                s.source_id,
                s.reason
            );
        }
    }
    let environ = std::fs::read("/proc/self/environ").unwrap();
    let sink = MemorySink::new();
    let res = Engine::new("MBOX-S3-ZIP", source.clone(), Box::new(sink.clone()))
        .run()
        .await;
    assert!(res.error.is_none(), "{:?}", res.error);
    assert_eq!(res.report.status, RunStatus::DoneWithSkips);
    assert_eq!(res.report.totals().skipped, 6);
    let got = sink.committed();
    assert_eq!(got.len(), 4);
    for m in &got {
        assert!(!m.raw.windows(MARKER.len()).any(|w| w == MARKER));
        assert!(environ.is_empty() || !m.raw.starts_with(&environ[..environ.len().min(64)]));
    }
}

#[tokio::test]
async fn a_tree_file_swapped_for_a_link_after_listing_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Mail");
    let outside = dir.path().join("outside");
    put(&outside, &secret_mbox());
    put(&root.join("Inbox"), TWO);
    let source = MboxSource::new(&root);
    assert_eq!(folders(&source).await, ["Inbox"]);
    std::fs::remove_file(root.join("Inbox")).unwrap();
    symlink(&outside, root.join("Inbox")).unwrap();
    let mut s = source
        .stream(&FolderPath::new(["Inbox"]), &Filter::default(), None)
        .await
        .unwrap();
    let err = s.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn a_single_file_given_as_a_link_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.mbox");
    put(&real, TWO);
    symlink(&real, dir.path().join("INBOX.mbox")).unwrap();
    let source = MboxSource::new(dir.path().join("INBOX.mbox"));
    assert_eq!(raws(&events(&source, &["INBOX"], None).await).len(), 2);
}

#[tokio::test]
async fn overlong_from_lines_and_large_messages_are_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.mbox");
    let mut data = b"From a Thu Nov 21 10:00:00 2024 ".to_vec();
    data.extend(std::iter::repeat_n(b'z', 300_000));
    data.extend_from_slice(b"\nA: b\n\n");
    let second = data.len();
    data.extend_from_slice(b"From b Thu Nov 21 10:00:00 2024\n");
    data.extend(std::iter::repeat_n(b'q', 9000));
    data.extend_from_slice(b"\n\n");
    let third = data.len();
    data.extend_from_slice(TWO);
    put(&file, &data);
    let source = MboxSource::new(&file).with_limits(SpillLimits {
        max_bytes: 8192,
        memory_threshold: 1024,
    });
    let evs = events(&source, &["x"], None).await;
    assert_eq!(evs.len(), 4);
    let SourceEvent::Unreadable {
        source_id,
        position,
        reason,
    } = &evs[0]
    else {
        panic!("{:?}", evs[0])
    };
    assert_eq!(
        (source_id.as_str(), position.clone()),
        ("0", second.to_string())
    );
    assert!(
        reason.contains("`From ` line is 300033 bytes long"),
        "{reason}"
    );
    let SourceEvent::Unreadable {
        source_id,
        position,
        reason,
    } = &evs[1]
    else {
        panic!("{:?}", evs[1])
    };
    assert_eq!(
        (source_id.clone(), position.clone()),
        (second.to_string(), third.to_string())
    );
    assert!(reason.contains("limit of 8192 bytes"), "{reason}");
    assert_eq!(raws(&evs[2..]).len(), 2);
    // Resuming after the reported ones reads on.
    assert_eq!(
        raws(&events(&source, &["x"], Some(&second.to_string())).await).len(),
        2
    );
}
