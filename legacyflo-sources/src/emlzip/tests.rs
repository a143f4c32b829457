use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use legacyflo_core::spill::SpillLimits;
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

/// Writes a ZIP of `entries` (name, bytes, deflated?).
fn zip_of(path: &Path, entries: &[(&str, &[u8], bool)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, body, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(body.len() > (1 << 30));
        z.start_file(*name, o).unwrap();
        z.write_all(body).unwrap();
    }
    z.finish().unwrap();
}

/// Replaces every occurrence of `from` in the file with `to` (same length).
fn patch(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut data = std::fs::read(path).unwrap();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
        i += 1;
    }
    assert!(n > 0);
    std::fs::write(path, data).unwrap();
}

fn small_limits() -> SpillLimits {
    SpillLimits {
        max_bytes: 1 << 20,
        memory_threshold: 64 << 10,
    }
}

#[tokio::test]
async fn inflation_is_bounded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.zip");
    let zeros = vec![0u8; 32 << 20];
    let spilled: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    zip_of(
        &path,
        &[
            ("bomb.eml", &zeros, true),
            ("liar.eml", &zeros, true),
            ("ok.eml", b"Subject: ok\r\n\r\n", true),
            ("spilled.eml", &spilled, true),
        ],
    );
    // `liar.eml` claims 256 KiB in both headers and inflates to 32 MiB.
    let real = (32u32 << 20).to_le_bytes();
    let claim = (256u32 << 10).to_le_bytes();
    let data = std::fs::read(&path).unwrap();
    let mut patched = data.clone();
    let name = b"liar.eml";
    let mut i = 0;
    while i + 4 <= data.len() {
        let local = data[i..].starts_with(&[0x50, 0x4b, 0x03, 0x04]);
        let central = data[i..].starts_with(&[0x50, 0x4b, 0x01, 0x02]);
        let (size_at, name_at) = if local {
            (22, 30)
        } else if central {
            (24, 46)
        } else {
            (0, 0)
        };
        if size_at > 0
            && data[i + name_at..].starts_with(name)
            && data[i + size_at..i + size_at + 4] == real
        {
            patched[i + size_at..i + size_at + 4].copy_from_slice(&claim);
        }
        i += 1;
    }
    std::fs::write(&path, patched).unwrap();

    let source = EmlZipSource::new(&path).with_limits(small_limits());
    let evs = all(&source, &["INBOX"], None).await;
    assert_eq!(evs.len(), 4);
    let reason = |e: &SourceEvent| match e {
        SourceEvent::Unreadable { reason, .. } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        reason(&evs[0]).contains("given as 33554432 bytes, larger than the limit of 1048576"),
        "{}",
        reason(&evs[0])
    );
    assert!(
        reason(&evs[1]).contains("larger than its declared uncompressed size"),
        "{}",
        reason(&evs[1])
    );
    assert!(
        matches!(&evs[2], SourceEvent::Message(m) if &m.message.raw[..] == b"Subject: ok\r\n\r\n")
    );
    let SourceEvent::Message(m) = &evs[3] else {
        panic!("{:?}", evs[3])
    };
    assert_eq!(
        &m.message.raw[..],
        &spilled[..],
        "spilled past the threshold, read back exactly"
    );
}

#[tokio::test]
async fn a_crc_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crc.zip");
    zip_of(
        &path,
        &[
            ("a.eml", b"Subject: intact-body-0001\r\n\r\n", false),
            ("b.eml", b"Subject: b\r\n\r\n", false),
        ],
    );
    patch(&path, b"intact-body-0001", b"intact-body-0002");
    let evs = all(&EmlZipSource::new(&path), &["INBOX"], None).await;
    assert!(
        matches!(&evs[0], SourceEvent::Unreadable { source_id, reason, .. } if source_id == "a.eml" && reason.contains("CRC-32")),
        "{:?}",
        evs[0]
    );
    assert!(matches!(&evs[1], SourceEvent::Message(_)));
}

#[tokio::test]
async fn duplicate_names_links_and_nameless_entries_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("Box/one.eml", "1"),
            ("Box/two.eml", "2"),
            ("Box/owt.eml", "3"),
            ("Box/x.eml", "x"),
        ] {
            z.start_file(name, o).unwrap();
            z.write_all(format!("Subject: {body}\r\n\r\n").as_bytes())
                .unwrap();
        }
        z.add_symlink("Box/link.eml", "/etc/shadow", o).unwrap();
        z.finish().unwrap();
    }
    // Three entries named Box/one.eml now.
    patch(&path, b"Box/two.eml", b"Box/one.eml");
    patch(&path, b"Box/owt.eml", b"Box/one.eml");
    let source = EmlZipSource::new(&path);
    let list = source.list_folders().await.unwrap();
    assert_eq!(list.len(), 1);
    let skipped: Vec<&str> = list[0]
        .skipped
        .iter()
        .map(|s| s.source_id.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["Box/one.eml (copy 1 of 3)", "Box/one.eml (copy 2 of 3)"]
    );
    assert!(
        list[0].skipped[0]
            .reason
            .contains("3 entries named `Box/one.eml`")
    );
    let evs = all(&source, &["Box"], None).await;
    let got: Vec<(String, bool)> = evs
        .iter()
        .map(|e| match e {
            SourceEvent::Message(m) => (m.message.source_id.clone(), true),
            SourceEvent::Unreadable { source_id, .. } => (source_id.clone(), false),
            SourceEvent::Expunged { .. } => panic!(),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Box/one.eml".to_string(), true),
            ("Box/x.eml".to_string(), true),
            ("Box/link.eml".to_string(), false)
        ]
    );
}
