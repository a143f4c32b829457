//! Checkpoint state: what a run has made durable, saved atomically after every commit.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message::FolderPath;
use crate::sink::{Output, SinkState};
use crate::source::Position;

use super::report::FolderReport;

/// Where checkpoint state is kept: a local directory now, S3 with the S3 backend.
///
/// # Contract
/// `save` MUST be atomic (after a crash `load` returns the old or the new bytes, never a
/// mix) and durable when it returns.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The saved state, or `None` when there is none.
    async fn load(&self) -> Result<Option<Vec<u8>>>;
    /// Replaces the saved state.
    async fn save(&self, bytes: &[u8]) -> Result<()>;
    /// Where the state lives, for messages.
    fn describe(&self) -> String;
}

/// State in a local file `<dir>/<key>.json`.
#[derive(Clone, Debug)]
pub struct LocalStateStore {
    path: PathBuf,
}

impl LocalStateStore {
    /// State for request `key` under `dir`.
    pub fn new(dir: impl Into<PathBuf>, key: &str) -> Self {
        LocalStateStore {
            path: dir.into().join(format!("{key}.json")),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[async_trait]
impl StateStore for LocalStateStore {
    async fn load(&self) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(&self.path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", self.path.display()), e)),
        }
    }

    async fn save(&self, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&path, &bytes))
            .await
            .map_err(|e| Error::State(format!("state writer stopped: {e}")))?
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Per-folder checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FolderCheckpoint {
    /// The folder.
    pub path: FolderPath,
    /// Position of the last message made durable; `None` before the first.
    pub position: Option<Position>,
    /// Whether every message of the folder is durable.
    pub done: bool,
    /// Counts up to the checkpoint.
    pub report: FolderReport,
}

/// The whole state of a request, saved after each commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Format version.
    pub version: u32,
    /// The request type.
    pub request_type: String,
    /// The sink's resume state.
    pub sink: Option<SinkState>,
    /// Folder checkpoints.
    pub folders: Vec<FolderCheckpoint>,
    /// Whether the run finished (outputs complete).
    pub finished: bool,
    /// The outputs of a finished run.
    pub outputs: Vec<Output>,
    /// When the first run started (RFC 3339).
    pub first_started: Option<String>,
}

impl RunState {
    /// Current format version.
    pub const VERSION: u32 = 1;

    /// Parses saved state.
    pub fn from_bytes(bytes: &[u8]) -> Result<RunState> {
        let st: RunState = serde_json::from_slice(bytes)
            .map_err(|e| Error::State(format!("cannot parse saved state: {e}")))?;
        if st.version != Self::VERSION {
            return Err(Error::State(format!(
                "saved state has version {}, this build reads {}",
                st.version,
                Self::VERSION
            )));
        }
        Ok(st)
    }

    /// Serialises the state.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::State(format!("cannot serialise state: {e}")))
    }

    /// The checkpoint of `path`, if any.
    pub fn folder(&self, path: &FolderPath) -> Option<&FolderCheckpoint> {
        self.folders.iter().find(|f| &f.path == path)
    }
}
