#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_core::{ErrorKind, Filter, FolderPath, Source};

use super::PstSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = PstSource::new(dir.path().join("nope.pst"));
    let err = s.list_folders().await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().starts_with("pst: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_a_pst_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.pst");
    std::fs::write(&p, vec![0u8; 4096]).unwrap();
    let err = PstSource::new(&p).list_folders().await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_folder_and_bad_position() {
    let p = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstsdk__sample1.pst"
    ));
    if !p.exists() {
        return; // covered by tests/pst_reference.rs, which requires the file
    }
    let s = PstSource::new(p);
    let err = s
        .stream(&FolderPath::new(["no such"]), &Filter::default(), None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let f = s.list_folders().await.unwrap();
    let err = s
        .stream(&f[0].path, &Filter::default(), Some(&"x1".to_string()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Writes a PST (no encoding, so stored bytes are searchable) of three messages, the
/// second with an attachment holding `marker`; returns its path.
fn write_three(dir: &std::path::Path, marker: &[u8]) -> std::path::PathBuf {
    use legacyflo_pst::{Encoding, MessageMeta, PstWriter, WriterOptions};
    let p = dir.join("three.pst");
    let opts = WriterOptions {
        encoding: Encoding::None,
        ..Default::default()
    };
    let mut w = PstWriter::create(&p, opts).unwrap();
    let f = w.folder(&["Inbox"]).unwrap();
    let b64 = |d: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(d)
    };
    for i in 0..3 {
        let raw = if i == 1 {
            format!(
                "Subject: m{i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=m.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--B--\r\n",
                b64(marker)
            )
        } else {
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n")
        };
        w.add_message(f, raw.as_bytes(), &MessageMeta::default())
            .unwrap();
    }
    w.finish().unwrap();
    p
}

/// A flipped byte in one message's block: that message is unreadable, named by its node
/// id, with the damaged block and the CRCs in the reason; the others stream as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_block_makes_its_message_unreadable() {
    use futures::StreamExt;
    use legacyflo_core::SourceEvent;
    let dir = tempfile::tempdir().unwrap();
    let marker = b"MARKER-0123456789-MARKER-0123456789-MARKER";
    let p = write_three(dir.path(), marker);
    let clean: Vec<u32> = {
        let r = legacyflo_pst::PstReader::open(&p).unwrap();
        let f = r
            .folders()
            .unwrap()
            .into_iter()
            .find(|f| f.path == ["Inbox"])
            .unwrap();
        r.message_ids(&f).unwrap()
    };
    let mut data = std::fs::read(&p).unwrap();
    let at = data
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker stored as is");
    data[at + 3] ^= 0x01;
    std::fs::write(&p, &data).unwrap();

    let s = PstSource::new(&p);
    let folders = s.list_folders().await.unwrap();
    let inbox = folders
        .iter()
        .find(|f| f.path == FolderPath::new(["Inbox"]))
        .unwrap();
    assert!(inbox.skipped.is_empty() && inbox.notes.is_empty());
    let mut stream = s
        .stream(&inbox.path, &Filter::default(), None)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(ev) = stream.next().await {
        match ev.unwrap() {
            SourceEvent::Message(m) => seen.push(format!("ok {}", m.message.source_id)),
            SourceEvent::Unreadable {
                source_id, reason, ..
            } => {
                assert!(
                    reason.contains("CRC") && reason.contains("block 0x"),
                    "{reason}"
                );
                seen.push(format!("bad {source_id}"));
            }
            SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            format!("ok {}", clean[0]),
            format!("bad {}", clean[1]),
            format!("ok {}", clean[2])
        ]
    );
}

/// A folder whose contents table is damaged: the report notes how its messages were
/// found, and counts as skipped those its stored count says are missing.
#[test]
fn damaged_contents_table_is_noted_and_missing_messages_skipped() {
    let p = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstsdk__sample1.pst"
    ));
    let r = legacyflo_pst::PstReader::open(p).unwrap();
    let mut f = r.folders().unwrap().remove(0);
    let mut info = legacyflo_core::FolderInfo::new(FolderPath::new(["x"]));
    super::source::damage_report(&r, &f, &mut info);
    assert!(info.notes.is_empty() && info.skipped.is_empty());
    f.contents_error = Some("damaged PST block 0x40 at offset 0x1000: CRC".into());
    f.message_count = 3;
    f.stored_count = Some(5);
    f.subfolders_error = Some("damaged PST block 0x44 at offset 0x2000: CRC".into());
    super::source::damage_report(&r, &f, &mut info);
    assert_eq!(info.notes.len(), 2, "{:?}", info.notes);
    assert!(info.notes[0].contains("block 0x40") && info.notes[1].contains("block 0x44"));
    assert_eq!(info.skipped.len(), 2, "{:?}", info.skipped);
    assert!(info.skipped[0].reason.contains("holds 5 messages"));
}
