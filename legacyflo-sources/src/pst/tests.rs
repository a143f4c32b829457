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
