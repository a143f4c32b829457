//! [`MaildirSink`]: the [`Sink`] implementation.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use legacyflo_core::{
    FolderPath, Message, Output, OutputKind, Result, Sink, SinkState, WriteOutcome,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::BACKEND;
use crate::error::{SinkError, SinkResult};
use crate::util::{blocking, message_key, remove_if_exists, sync_dir};
use legacyflo_core::codec::maildir_encode;

/// The host part of the file names this sink writes; also how it recognises its own files.
const HOST: &str = "legacyflo";
/// Longest directory name most file systems accept.
const MAX_NAME: usize = 255;

/// Writes a Maildir++ tree.
///
/// See the [module documentation](super) for folder names, file names, durability and
/// duplicates.
#[derive(Debug)]
pub struct MaildirSink {
    root: PathBuf,
    folders: HashMap<FolderPath, FolderDir>,
    pending: Vec<Pending>,
    /// Directories to sync at the next commit.
    dirty_dirs: HashSet<PathBuf>,
    /// Messages made durable by this run.
    messages: u64,
    open: bool,
    broken: bool,
}

#[derive(Debug)]
struct FolderDir {
    /// The folder's directory, or why it cannot have one.
    dir: std::result::Result<PathBuf, String>,
    /// Identities of the messages this sink stored in it (from earlier runs too).
    keys: HashSet<u128>,
}

#[derive(Debug)]
struct Pending {
    folder: FolderPath,
    key: u128,
    tmp: PathBuf,
    cur: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct MaildirState {
    version: u32,
    messages: u64,
}

const STATE_VERSION: u32 = 1;

impl MaildirSink {
    /// A sink writing the Maildir++ tree at `root`. Nothing is touched until
    /// [`Sink::open`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MaildirSink {
            root: root.into(),
            folders: HashMap::new(),
            pending: Vec::new(),
            dirty_dirs: HashSet::new(),
            messages: 0,
            open: false,
            broken: false,
        }
    }

    /// The root directory (the INBOX).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `folder`: the root for `INBOX` (and the root path), else
    /// `.<seg1>.<seg2>…` with each segment encoded.
    fn folder_dir(&self, folder: &FolderPath) -> std::result::Result<PathBuf, String> {
        let segs = folder.segments();
        if segs.is_empty() || (segs.len() == 1 && segs[0] == "INBOX") {
            return Ok(self.root.clone());
        }
        let name: Vec<String> = segs.iter().map(|s| maildir_encode(s)).collect();
        let name = format!(".{}", name.join("."));
        if name.len() > MAX_NAME {
            return Err(format!(
                "folder {folder} needs a directory name of {} bytes; the limit is {MAX_NAME}",
                name.len()
            ));
        }
        Ok(self.root.join(name))
    }

    fn open_blocking(&mut self, resume: Option<MaildirState>) -> SinkResult<()> {
        self.folders.clear();
        self.pending.clear();
        self.dirty_dirs.clear();
        self.broken = false;
        self.messages = resume.map(|s| s.messages).unwrap_or(0);
        let root = self.root.clone();
        make_maildir(&root, false)?;
        self.dirty_dirs.insert(root.clone());
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dirty_dirs.insert(parent.to_path_buf());
        }
        // Messages written but not committed by an earlier sink are still in tmp/.
        let mut dirs = vec![root.clone()];
        let entries = fs::read_dir(&root)
            .map_err(|e| SinkError::io(BACKEND, format!("list {}", root.display()), e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') && entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        for dir in dirs {
            let tmp = dir.join("tmp");
            let Ok(files) = fs::read_dir(&tmp) else {
                continue;
            };
            for f in files.flatten() {
                if f.file_name()
                    .to_string_lossy()
                    .ends_with(&format!(".{HOST}"))
                {
                    debug!(message = "removing an uncommitted message", path = %f.path().display());
                    remove_if_exists(&f.path()).map_err(|e| {
                        SinkError::io(BACKEND, format!("remove {}", f.path().display()), e)
                    })?;
                }
            }
        }
        self.open = true;
        info!(message = "maildir sink opened", root = %self.root.display());
        Ok(())
    }

    fn begin_blocking(&mut self, folder: &FolderPath) -> SinkResult<()> {
        if !self.open {
            return Err(SinkError::misuse(BACKEND, "the sink is not open"));
        }
        if self.folders.contains_key(folder) {
            return Ok(());
        }
        let dir = self.folder_dir(folder);
        let mut keys = HashSet::new();
        if let Ok(d) = &dir {
            make_maildir(d, *d != self.root)?;
            self.dirty_dirs.insert(d.clone());
            self.dirty_dirs.insert(d.join("cur"));
            for sub in ["cur", "new"] {
                let p = d.join(sub);
                let entries = fs::read_dir(&p)
                    .map_err(|e| SinkError::io(BACKEND, format!("list {}", p.display()), e))?;
                for entry in entries.flatten() {
                    if let Some(k) = own_key(&entry.file_name().to_string_lossy()) {
                        keys.insert(k);
                    }
                }
            }
        } else if let Err(reason) = &dir {
            warn!(message = "folder cannot be stored", folder = %folder, reason = %reason);
        }
        self.folders.insert(folder.clone(), FolderDir { dir, keys });
        Ok(())
    }

    fn write_blocking(&mut self, message: &Message) -> SinkResult<WriteOutcome> {
        if self.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        self.begin_blocking(&message.folder)?;
        let Some(folder) = self.folders.get_mut(&message.folder) else {
            return Err(SinkError::misuse(BACKEND, "folder not prepared"));
        };
        let dir = match &folder.dir {
            Ok(d) => d.clone(),
            Err(reason) => {
                return Ok(WriteOutcome::Rejected {
                    reason: reason.clone(),
                });
            }
        };
        let key = message_key(message);
        if folder.keys.contains(&key) {
            return Ok(WriteOutcome::Duplicate);
        }
        let base = file_base(message.internal_date, key);
        let tmp = dir.join("tmp").join(&base);
        let name = format!("{base}:2,{}", flag_letters(message));
        let cur = dir.join("cur").join(&name);
        if let Err(e) = write_file(&tmp, &message.raw, message.internal_date) {
            let _ = remove_if_exists(&tmp);
            return Err(SinkError::io(
                BACKEND,
                format!("write {}", tmp.display()),
                e,
            ));
        }
        folder.keys.insert(key);
        self.pending.push(Pending {
            folder: message.folder.clone(),
            key,
            tmp,
            cur,
        });
        Ok(WriteOutcome::Written { id: Some(name) })
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
        if !self.open {
            return Err(SinkError::misuse(BACKEND, "the sink is not open"));
        }
        if self.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        let result = self.commit_inner();
        if result.is_err() {
            self.broken = true;
        }
        result?;
        serde_json::to_value(MaildirState {
            version: STATE_VERSION,
            messages: self.messages,
        })
        .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")))
    }

    fn commit_inner(&mut self) -> SinkResult<()> {
        for p in &self.pending {
            fs::rename(&p.tmp, &p.cur).map_err(|e| {
                SinkError::io(
                    BACKEND,
                    format!("rename {} to {}", p.tmp.display(), p.cur.display()),
                    e,
                )
            })?;
            if let Some(d) = p.cur.parent() {
                self.dirty_dirs.insert(d.to_path_buf());
            }
        }
        let mut dirs: Vec<&PathBuf> = self.dirty_dirs.iter().collect();
        dirs.sort();
        for d in dirs {
            sync_dir(d).map_err(|e| SinkError::io(BACKEND, format!("sync {}", d.display()), e))?;
        }
        self.dirty_dirs.clear();
        self.messages += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn abort_blocking(&mut self) -> SinkResult<()> {
        for p in std::mem::take(&mut self.pending) {
            // A failed commit may have moved some of them already.
            for path in [&p.tmp, &p.cur] {
                remove_if_exists(path)
                    .map_err(|e| SinkError::io(BACKEND, format!("remove {}", path.display()), e))?;
            }
            if let Some(f) = self.folders.get_mut(&p.folder) {
                f.keys.remove(&p.key);
            }
        }
        self.broken = false;
        Ok(())
    }

    fn finish_blocking(&mut self) -> SinkResult<Vec<Output>> {
        self.commit_blocking()?;
        self.open = false;
        info!(message = "maildir finished", root = %self.root.display(), messages = self.messages);
        Ok(vec![Output {
            location: self.root.display().to_string(),
            kind: OutputKind::Mailbox,
            bytes: None,
            messages: self.messages,
        }])
    }
}

/// Creates `dir/{cur,new,tmp}` (and `maildirfolder` for a sub-folder).
fn make_maildir(dir: &Path, subfolder: bool) -> SinkResult<()> {
    for sub in ["cur", "new", "tmp"] {
        let p = dir.join(sub);
        fs::create_dir_all(&p)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", p.display()), e))?;
    }
    if subfolder {
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            File::create(&marker)
                .map_err(|e| SinkError::io(BACKEND, format!("create {}", marker.display()), e))?;
        }
    }
    Ok(())
}

/// `<unix seconds of the internal date, or 0>.<32 hex digits of the identity>.legacyflo`.
fn file_base(date: Option<DateTime<Utc>>, key: u128) -> String {
    let secs = date.map(|d| d.timestamp()).unwrap_or(0).max(0);
    format!("{secs}.{key:032x}.{HOST}")
}

/// The identity in a file name this sink wrote, if it is one.
fn own_key(name: &str) -> Option<u128> {
    let base = name.split(':').next()?;
    let mut parts = base.split('.');
    let (_secs, key, host) = (parts.next()?, parts.next()?, parts.next()?);
    if host != HOST || parts.next().is_some() || key.len() != 32 {
        return None;
    }
    u128::from_str_radix(key, 16).ok()
}

/// The Maildir info letters of the message's system flags, in ASCII order.
fn flag_letters(message: &Message) -> String {
    let mut letters: Vec<char> = message
        .flags
        .iter()
        .filter_map(|f| f.maildir_letter())
        .collect();
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

fn write_file(path: &Path, raw: &[u8], date: Option<DateTime<Utc>>) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(raw)?;
    if let Some(d) = date {
        f.set_modified(system_time(d))?;
    }
    f.sync_all()
}

fn system_time(d: DateTime<Utc>) -> SystemTime {
    let secs = d.timestamp();
    let nanos = d.timestamp_subsec_nanos();
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
            .unwrap_or(UNIX_EPOCH)
    }
}

#[async_trait]
impl Sink for MaildirSink {
    fn kind(&self) -> &str {
        BACKEND
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        let state = match resume {
            None => None,
            Some(v) => Some(serde_json::from_value::<MaildirState>(v).map_err(|e| {
                SinkError::state(BACKEND, format!("not a maildir sink state: {e}"))
            })?),
        };
        Ok(blocking(|| self.open_blocking(state))?)
    }

    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        Ok(blocking(|| self.begin_blocking(folder))?)
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        Ok(blocking(|| self.write_blocking(message))?)
    }

    async fn commit(&mut self) -> Result<SinkState> {
        Ok(blocking(|| self.commit_blocking())?)
    }

    async fn abort(&mut self) -> Result<()> {
        Ok(blocking(|| self.abort_blocking())?)
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        Ok(blocking(|| self.finish_blocking())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names() {
        let b = file_base(None, 0xabc);
        assert_eq!(b, "0.00000000000000000000000000000abc.legacyflo");
        assert_eq!(own_key(&format!("{b}:2,S")), Some(0xabc));
        assert_eq!(own_key("1700000000.M1P2.host:2,S"), None);
        assert_eq!(own_key("1700000000.M000001P1.legacyflo:2,S"), None);
    }
}
