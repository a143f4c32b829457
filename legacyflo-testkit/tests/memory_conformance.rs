//! The in-memory reference backends pass their own suite, so the suite itself is sound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use legacyflo_core::{Message, Sink, Source};
use legacyflo_testkit::conformance::{
    SinkCaps, SinkHarness, SourceCaps, SourceHarness, run_sink_suite, run_source_suite,
};
use legacyflo_testkit::memory::{MemorySink, MemorySource};

struct MemSinkHarness(MemorySink);

#[async_trait]
impl SinkHarness for MemSinkHarness {
    async fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.0.clone())
    }
    async fn read_back(&self) -> Vec<Message> {
        self.0.committed()
    }
    async fn reset(&self) {
        let store = self.0.store();
        let mut s = store.lock().unwrap();
        s.committed.clear();
        s.pending.clear();
    }
    fn caps(&self) -> SinkCaps {
        SinkCaps {
            byte_exact: true,
            flags: true,
            internal_date: true,
        }
    }
}

struct MemSourceHarness;

#[async_trait]
impl SourceHarness for MemSourceHarness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        Arc::new(MemorySource::new(messages.to_vec()))
    }
    fn caps(&self) -> SourceCaps {
        SourceCaps {
            flags: true,
            internal_date: true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sink_conformance() {
    run_sink_suite(&MemSinkHarness(MemorySink::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_source_conformance() {
    run_source_suite(&MemSourceHarness).await;
}

/// A sink that breaks its contract (loses uncommitted writes on finish) must fail the suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "abort")]
async fn suite_catches_a_sink_that_ignores_abort() {
    #[derive(Clone)]
    struct NoAbort(MemorySink);
    #[async_trait]
    impl Sink for NoAbort {
        fn kind(&self) -> &str {
            "no-abort"
        }
        async fn open(
            &mut self,
            r: Option<legacyflo_core::SinkState>,
        ) -> legacyflo_core::Result<()> {
            self.0.open(r).await
        }
        async fn begin_folder(
            &mut self,
            f: &legacyflo_core::FolderPath,
        ) -> legacyflo_core::Result<()> {
            self.0.begin_folder(f).await
        }
        async fn write(
            &mut self,
            m: &Message,
        ) -> legacyflo_core::Result<legacyflo_core::WriteOutcome> {
            self.0.write(m).await
        }
        async fn commit(&mut self) -> legacyflo_core::Result<legacyflo_core::SinkState> {
            self.0.commit().await
        }
        async fn abort(&mut self) -> legacyflo_core::Result<()> {
            Ok(())
        }
        async fn finish(&mut self) -> legacyflo_core::Result<Vec<legacyflo_core::Output>> {
            self.0.finish().await
        }
    }
    struct H(MemorySink);
    #[async_trait]
    impl SinkHarness for H {
        async fn sink(&self) -> Box<dyn Sink> {
            Box::new(NoAbort(self.0.clone()))
        }
        async fn read_back(&self) -> Vec<Message> {
            self.0.committed()
        }
        async fn reset(&self) {
            let st = self.0.store();
            let mut s = st.lock().unwrap();
            s.committed.clear();
            s.pending.clear();
        }
        fn caps(&self) -> SinkCaps {
            SinkCaps {
                byte_exact: true,
                flags: true,
                internal_date: true,
            }
        }
    }
    legacyflo_testkit::conformance::sink_abort_discards(&H(MemorySink::new())).await;
}
