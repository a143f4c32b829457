//! The testkit's source conformance suite against the mbox, Maildir and eml-zip sources,
//! their input written by the matching sink of `legacyflo-sinks`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use legacyflo_core::{FolderPath, Message, Sink, Source};
use legacyflo_sinks::{maildir::MaildirSink, mbox::MboxSink, zip::ZipSink};
use legacyflo_sources::{emlzip::EmlZipSource, maildir::MaildirSource, mbox::MboxSource};
use legacyflo_testkit::conformance::{SourceCaps, SourceHarness, run_source_suite};

#[derive(Clone, Copy)]
enum Kind {
    Mbox,
    Maildir,
    EmlZip,
}

struct Harness {
    kind: Kind,
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl Harness {
    fn new(kind: Kind) -> Self {
        Harness {
            kind,
            dirs: Mutex::new(Vec::new()),
        }
    }
}

/// Writes `messages` through `sink` in the given order.
async fn store(mut sink: Box<dyn Sink>, messages: &[Message]) {
    sink.open(None).await.expect("open");
    let mut begun: Vec<FolderPath> = Vec::new();
    for m in messages {
        if !begun.contains(&m.folder) {
            sink.begin_folder(&m.folder).await.expect("begin folder");
            begun.push(m.folder.clone());
        }
        sink.write(m).await.expect("write");
    }
    sink.finish().await.expect("finish");
}

#[async_trait]
impl SourceHarness for Harness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let dir = tempfile::tempdir().expect("tempdir");
        let root: PathBuf = dir.path().to_path_buf();
        self.dirs.lock().expect("lock").push(dir);
        match self.kind {
            Kind::Mbox => {
                let out = root.join("mbox");
                store(Box::new(MboxSink::new(&out)), messages).await;
                Arc::new(MboxSource::new(out))
            }
            Kind::Maildir => {
                let out = root.join("Maildir");
                store(Box::new(MaildirSink::new(&out)), messages).await;
                Arc::new(MaildirSource::new(out))
            }
            Kind::EmlZip => {
                let out = root.join("mailbox.zip");
                store(Box::new(ZipSink::new(&out)), messages).await;
                Arc::new(EmlZipSource::new(out))
            }
        }
    }

    fn caps(&self) -> SourceCaps {
        match self.kind {
            Kind::Mbox => SourceCaps {
                flags: false,
                internal_date: true,
            },
            Kind::Maildir | Kind::EmlZip => SourceCaps {
                flags: true,
                internal_date: true,
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbox_source_conformance() {
    run_source_suite(&Harness::new(Kind::Mbox)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maildir_source_conformance() {
    run_source_suite(&Harness::new(Kind::Maildir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eml_zip_source_conformance() {
    run_source_suite(&Harness::new(Kind::EmlZip)).await;
}
