use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use legacyflo_core::{Filter, FolderPath, Source, SourceEvent};

use super::EmlZipSource;

fn foreign_zip(path: &Path) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let o = zip::write::SimpleFileOptions::default();
    let add = |z: &mut zip::ZipWriter<std::fs::File>, name: &str, body: &[u8]| {
        z.start_file(name, o).unwrap();
        z.write_all(body).unwrap();
    };
    add(&mut z, "root.eml", b"Subject: root\r\n\r\n");
    z.add_directory("Projekte/", o).unwrap();
    add(&mut z, "Projekte/Entwürfe/1.eml", b"Subject: 1\r\n\r\n");
    add(&mut z, "Projekte/Entwürfe/notes.txt", b"not mail");
    add(&mut z, "Projekte/Entwürfe/2.EML", b"Subject: 2\r\n\r\n");
    add(&mut z, "100%25/3.eml", b"Subject: 3\r\n\r\n");
    add(&mut z, "content.csv", b"date,from\n");
    add(&mut z, "Win\\Sub\\4.eml", b"Subject: 4\r\n\r\n");
    z.finish().unwrap();
}

async fn all(source: &EmlZipSource, folder: &[&str], after: Option<&str>) -> Vec<SourceEvent> {
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

#[tokio::test]
async fn a_foreign_zip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.zip");
    foreign_zip(&path);
    let source = EmlZipSource::new(&path);
    let list = source.list_folders().await.unwrap();
    let names: Vec<String> = list.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        names,
        ["100%25", "INBOX", "Projekte/Entwürfe", "Win/Sub"],
        "foreign names are not unescaped"
    );
    assert_eq!(list[2].messages, Some(2));

    let evs = all(&source, &["Projekte", "Entwürfe"], None).await;
    assert_eq!(evs.len(), 3);
    let SourceEvent::Message(first) = &evs[0] else {
        panic!()
    };
    assert_eq!(first.message.source_id, "Projekte/Entwürfe/1.eml");
    assert_eq!(first.position, "2");
    assert!(first.message.internal_date.is_none() && first.message.flags.is_empty());
    let SourceEvent::Unreadable {
        source_id,
        position,
        reason,
    } = &evs[1]
    else {
        panic!()
    };
    assert_eq!(source_id, "Projekte/Entwürfe/notes.txt");
    assert_eq!(position, "3");
    assert_eq!(reason, "not an .eml file: Projekte/Entwürfe/notes.txt");
    let SourceEvent::Message(last) = &evs[2] else {
        panic!()
    };
    assert_eq!(&last.message.raw[..], b"Subject: 2\r\n\r\n");

    let rest = all(&source, &["Projekte", "Entwürfe"], Some("2")).await;
    assert_eq!(rest.len(), 2);
    assert!(
        all(&source, &["Projekte", "Entwürfe"], Some("4"))
            .await
            .is_empty()
    );
    let inbox = all(&source, &["INBOX"], None).await;
    assert_eq!(
        inbox.len(),
        1,
        "the root .eml is in INBOX and the root .csv is skipped"
    );
}

#[tokio::test]
async fn not_a_zip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.zip");
    std::fs::write(&path, b"no zip").unwrap();
    let err = EmlZipSource::new(&path).list_folders().await.unwrap_err();
    assert!(err.to_string().starts_with("eml-zip: "), "{err}");
}
