//! In-memory [`Source`] and [`Sink`]: reference implementations of the contracts, used by
//! the engine's tests and as the other end of every backend's conformance run.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use legacyflo_core::{
    Error, ErrorKind, Filter, FolderInfo, FolderPath, Message, MessageStream, Output, OutputKind,
    Position, Result, Sink, SinkState, Source, SourceCapabilities, SourceEvent, SourceItem,
    WriteOutcome,
};

/// A failure to inject into a [`MemorySource`].
#[derive(Clone, Debug)]
pub struct InjectedFailure {
    /// Fail after this many messages have been yielded in total (across folders and streams).
    pub after: usize,
    /// The error kind (Temporary to test retries, Other to test a fatal stop).
    pub kind: ErrorKind,
    /// How many times to fail (each later attempt past `after` fails again until used up).
    pub times: usize,
}

/// A source over messages held in memory. Folders come from the messages, in first-seen
/// order; positions are indexes within the folder.
#[derive(Debug)]
pub struct MemorySource {
    folders: Vec<(FolderPath, Vec<Message>)>,
    failure: Mutex<Option<InjectedFailure>>,
    yielded: Arc<AtomicUsize>,
}

impl MemorySource {
    /// A source over `messages`.
    pub fn new(messages: impl IntoIterator<Item = Message>) -> Self {
        let mut folders: Vec<(FolderPath, Vec<Message>)> = Vec::new();
        for m in messages {
            match folders.iter_mut().find(|(p, _)| *p == m.folder) {
                Some((_, v)) => v.push(m),
                None => folders.push((m.folder.clone(), vec![m])),
            }
        }
        MemorySource {
            folders,
            failure: Mutex::new(None),
            yielded: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Makes the source fail as described.
    pub fn fail(self, failure: InjectedFailure) -> Self {
        *self.failure.lock().unwrap() = Some(failure);
        self
    }

    /// Messages yielded so far.
    pub fn yielded(&self) -> usize {
        self.yielded.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Source for MemorySource {
    fn kind(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            filters_dates: false,
            concurrent_folders: true,
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        Ok(self
            .folders
            .iter()
            .map(|(p, v)| FolderInfo {
                messages: Some(v.len() as u64),
                ..FolderInfo::new(p.clone())
            })
            .collect())
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        _filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let msgs = self
            .folders
            .iter()
            .find(|(p, _)| p == folder)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                Error::backend("memory", ErrorKind::NotFound, format!("no folder {folder}"))
            })?;
        let start = match after {
            None => 0,
            Some(p) => {
                p.parse::<usize>().map_err(|_| {
                    Error::backend(
                        "memory",
                        ErrorKind::InvalidInput,
                        format!("bad position {p}"),
                    )
                })? + 1
            }
        };
        let failure = self.failure.lock().unwrap().clone();
        let yielded = self.yielded.clone();
        let failure_slot = &self.failure;
        let items: Vec<(usize, Message)> = msgs.into_iter().enumerate().skip(start).collect();
        let stream = futures::stream::iter(items).map(move |(i, m)| {
            if let Some(f) = &failure
                && yielded.load(Ordering::SeqCst) >= f.after
            {
                let mut slot = failure_slot.lock().unwrap();
                if let Some(cur) = slot.as_mut()
                    && cur.times > 0
                {
                    cur.times -= 1;
                    return Err(Error::backend("memory", f.kind, "injected failure"));
                }
            }
            yielded.fetch_add(1, Ordering::SeqCst);
            Ok(SourceEvent::Message(SourceItem {
                message: m,
                position: i.to_string(),
            }))
        });
        // Stop after the first error, as the contract requires.
        let mut failed = false;
        let stream = futures::StreamExt::take_while(stream, move |r| {
            let go = !failed;
            if r.is_err() {
                failed = true;
            }
            futures::future::ready(go)
        });
        Ok(Box::pin(stream))
    }
}

use futures::StreamExt as _;

/// What a [`MemorySink`] holds, shared so tests can look inside.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Durable messages, in commit order.
    pub committed: Vec<Message>,
    /// Written since the last commit.
    pub pending: Vec<Message>,
    /// Folders begun.
    pub folders: Vec<FolderPath>,
    /// Whether `finish` was called.
    pub finished: bool,
    /// Commits so far.
    pub commits: usize,
}

/// A sink that keeps messages in memory. Its state is the number of committed messages;
/// `open(Some(n))` cuts the committed list back to `n` (simulating a crash that lost what
/// came after). Optionally fails on the n-th write.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    store: Arc<Mutex<MemoryStore>>,
    fail_writes: Arc<Mutex<Vec<(usize, ErrorKind)>>>,
    writes: Arc<AtomicUsize>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// The shared store.
    pub fn store(&self) -> Arc<Mutex<MemoryStore>> {
        self.store.clone()
    }

    /// Fails the `n`-th write (1-based, counted over the sink's life) with `kind`.
    pub fn fail_write(self, n: usize, kind: ErrorKind) -> Self {
        self.fail_writes.lock().unwrap().push((n, kind));
        self
    }

    /// The committed messages.
    pub fn committed(&self) -> Vec<Message> {
        self.store.lock().unwrap().committed.clone()
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn kind(&self) -> &str {
        "memory"
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        let mut s = self.store.lock().unwrap();
        s.pending.clear();
        match resume {
            None => s.committed.clear(),
            Some(v) => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| Error::State("memory sink state".into()))?
                    as usize;
                s.committed.truncate(n);
            }
        }
        Ok(())
    }

    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        let mut s = self.store.lock().unwrap();
        if !s.folders.contains(folder) {
            s.folders.push(folder.clone());
        }
        Ok(())
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((_, kind)) = self
            .fail_writes
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| *k == n)
        {
            return Err(Error::backend(
                "memory",
                *kind,
                format!("injected write failure #{n}"),
            ));
        }
        let mut s = self.store.lock().unwrap();
        let dup = s
            .committed
            .iter()
            .chain(s.pending.iter())
            .any(|m| m.folder == message.folder && m.source_id == message.source_id);
        if dup {
            return Ok(WriteOutcome::Duplicate);
        }
        s.pending.push(message.clone());
        Ok(WriteOutcome::Written { id: None })
    }

    async fn commit(&mut self) -> Result<SinkState> {
        let mut s = self.store.lock().unwrap();
        let pending = std::mem::take(&mut s.pending);
        s.committed.extend(pending);
        s.commits += 1;
        Ok(serde_json::json!(s.committed.len()))
    }

    async fn abort(&mut self) -> Result<()> {
        self.store.lock().unwrap().pending.clear();
        Ok(())
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        let mut s = self.store.lock().unwrap();
        let pending = std::mem::take(&mut s.pending);
        s.committed.extend(pending);
        s.finished = true;
        Ok(vec![Output {
            location: "memory".into(),
            kind: OutputKind::Mailbox,
            bytes: Some(s.committed.iter().map(Message::size).sum()),
            messages: s.committed.len() as u64,
        }])
    }
}

/// Groups messages by folder, keeping order: handy for assertions.
pub fn by_folder(messages: &[Message]) -> BTreeMap<FolderPath, Vec<Message>> {
    let mut m: BTreeMap<FolderPath, Vec<Message>> = BTreeMap::new();
    for msg in messages {
        m.entry(msg.folder.clone()).or_default().push(msg.clone());
    }
    m
}

/// The set of (folder, source id) pairs.
pub fn ids(messages: &[Message]) -> HashSet<(FolderPath, String)> {
    messages
        .iter()
        .map(|m| (m.folder.clone(), m.source_id.clone()))
        .collect()
}
