use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use legacyflo_core::{ErrorKind, Filter, Flag, FolderPath, Source, SourceEvent};

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
