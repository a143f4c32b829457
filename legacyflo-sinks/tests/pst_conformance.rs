//! The testkit's sink conformance suite against the PST sink, read back through the PST
//! source. A PST keeps properties, not bytes: messages are matched by folder, subject,
//! From and Message-ID; flags are not compared (only `\Seen` and `\Flagged` are kept).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::{Filter, Message, Sink, Source, SourceEvent};
use legacyflo_sinks::pst::PstSink;
use legacyflo_sources::pst::PstSource;
use legacyflo_testkit::conformance::{SinkCaps, SinkHarness, run_sink_suite};

struct Harness {
    dir: tempfile::TempDir,
}

impl Harness {
    fn out(&self) -> PathBuf {
        self.dir.path().join("out").join("x.pst")
    }
}

#[async_trait]
impl SinkHarness for Harness {
    async fn sink(&self) -> Box<dyn Sink> {
        Box::new(PstSink::new(self.out()))
    }

    async fn read_back(&self) -> Vec<Message> {
        let source = PstSource::new(self.out());
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
                    } => panic!("unreadable {source_id} in {}: {reason}", f.path),
                }
            }
        }
        out
    }

    async fn reset(&self) {
        let out = self.dir.path().join("out");
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("reset");
        }
        std::fs::create_dir_all(&out).expect("reset");
    }

    fn caps(&self) -> SinkCaps {
        SinkCaps {
            byte_exact: false,
            flags: false,
            internal_date: true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pst_sink_conformance() {
    run_sink_suite(&Harness {
        dir: tempfile::tempdir().expect("tempdir"),
    })
    .await;
}
