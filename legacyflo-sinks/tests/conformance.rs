//! The testkit's sink conformance suite against the ZIP, Maildir and mbox sinks, each read
//! back through the matching source of `legacyflo-sources`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::{Filter, Message, Sink, Source, SourceEvent};
use legacyflo_sinks::{maildir::MaildirSink, mbox::MboxSink, zip::ZipSink};
use legacyflo_sources::{emlzip::EmlZipSource, maildir::MaildirSource, mbox::MboxSource};
use legacyflo_testkit::conformance::{SinkCaps, SinkHarness, run_sink_suite};

/// Every message of `source`, folder by folder; an unreadable one fails the test.
async fn read_all(source: Arc<dyn Source>) -> Vec<Message> {
    let mut out = Vec::new();
    for f in source.list_folders().await.expect("list folders") {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        while let Some(ev) = s.next().await {
            match ev.expect("stream item") {
                SourceEvent::Message(item) => out.push(item.message),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => {
                    panic!("unreadable {source_id} in {}: {reason}", f.path)
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Kind {
    Zip,
    Maildir,
    Mbox,
}

struct Harness {
    dir: tempfile::TempDir,
    kind: Kind,
}

impl Harness {
    fn new(kind: Kind) -> Self {
        Harness {
            dir: tempfile::tempdir().expect("tempdir"),
            kind,
        }
    }

    fn out(&self) -> PathBuf {
        match self.kind {
            Kind::Zip => self.dir.path().join("out").join("mailbox.zip"),
            Kind::Maildir => self.dir.path().join("out").join("Maildir"),
            Kind::Mbox => self.dir.path().join("out").join("mbox"),
        }
    }
}

#[async_trait]
impl SinkHarness for Harness {
    async fn sink(&self) -> Box<dyn Sink> {
        match self.kind {
            Kind::Zip => Box::new(ZipSink::new(self.out())),
            Kind::Maildir => Box::new(MaildirSink::new(self.out())),
            Kind::Mbox => Box::new(MboxSink::new(self.out())),
        }
    }

    async fn read_back(&self) -> Vec<Message> {
        let source: Arc<dyn Source> = match self.kind {
            Kind::Zip => Arc::new(EmlZipSource::new(self.out())),
            Kind::Maildir => Arc::new(MaildirSource::new(self.out())),
            Kind::Mbox => Arc::new(MboxSource::new(self.out())),
        };
        read_all(source).await
    }

    async fn reset(&self) {
        let out = self.dir.path().join("out");
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("reset");
        }
        std::fs::create_dir_all(&out).expect("reset");
    }

    fn caps(&self) -> SinkCaps {
        match self.kind {
            Kind::Zip | Kind::Maildir => SinkCaps {
                byte_exact: true,
                flags: true,
                internal_date: true,
            },
            Kind::Mbox => SinkCaps {
                byte_exact: true,
                flags: false,
                internal_date: true,
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_sink_conformance() {
    run_sink_suite(&Harness::new(Kind::Zip)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maildir_sink_conformance() {
    run_sink_suite(&Harness::new(Kind::Maildir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbox_sink_conformance() {
    run_sink_suite(&Harness::new(Kind::Mbox)).await;
}
