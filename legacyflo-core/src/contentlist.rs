//! The content-list CSV written beside every file output, as the service produces it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{partial_path, rename_durable, sync_parent};
use crate::message::Message;
use crate::sink::{Output, OutputKind};

/// The CSV header, in column order.
pub const HEADER: [&str; 9] = [
    "date",
    "from",
    "to",
    "subject",
    "folder",
    "size",
    "sha256",
    "message_id",
    "entry",
];

/// What a content list must remember to resume: its committed length and row count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentListState {
    /// Bytes of the CSV that are durable.
    pub len: u64,
    /// Data rows in those bytes.
    pub rows: u64,
}

/// The path of the content list of a data file: same name, `.csv` extension.
pub fn content_list_path(data_file: &Path) -> PathBuf {
    data_file.with_extension("csv")
}

/// A content-list CSV being written to `<final>.partial`, renamed at [`ContentList::finish`].
///
/// Rows: date (RFC 3339, UTC; the `Date:` header, else the internal date), from, to,
/// subject, folder (`/`-separated), size in bytes, SHA-256 of the raw message, Message-ID,
/// and the entry name inside the data file.
#[derive(Debug)]
pub struct ContentList {
    final_path: PathBuf,
    partial: PathBuf,
    out: csv::Writer<File>,
    committed: ContentListState,
    rows: u64,
}

impl ContentList {
    /// Starts a new list for `final_path` (any old partial file is replaced).
    pub fn create(final_path: &Path) -> Result<Self> {
        let partial = partial_path(final_path);
        File::create(&partial)
            .map_err(|e| Error::io(format!("create {}", partial.display()), e))?;
        let file = open_append(&partial)?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(HEADER).map_err(|e| csv_err(&partial, e))?;
        let mut list = ContentList {
            final_path: final_path.to_path_buf(),
            partial,
            out,
            committed: ContentListState::default(),
            rows: 0,
        };
        list.commit()?;
        Ok(list)
    }

    /// Reopens the partial list of an interrupted run, cut back to `state`.
    pub fn resume(final_path: &Path, state: ContentListState) -> Result<Self> {
        let partial = partial_path(final_path);
        let file = open_append(&partial)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", partial.display()), e))?
            .len();
        if len < state.len {
            return Err(Error::State(format!(
                "{} is shorter ({len} bytes) than its checkpoint ({} bytes)",
                partial.display(),
                state.len
            )));
        }
        file.set_len(state.len)
            .map_err(|e| Error::io(format!("truncate {}", partial.display()), e))?;
        let out = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        Ok(ContentList {
            final_path: final_path.to_path_buf(),
            partial,
            out,
            committed: state,
            rows: state.rows,
        })
    }

    /// Appends the row of `message`, stored as `entry` in the data file.
    pub fn append(&mut self, message: &Message, entry: &str) -> Result<()> {
        self.out
            .write_record(row_fields(message, entry))
            .map_err(|e| csv_err(&self.partial, e))?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes and syncs; returns the state to resume from.
    pub fn commit(&mut self) -> Result<ContentListState> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("write {}", self.partial.display()), e))?;
        let file = self.out.get_ref();
        file.sync_data()
            .map_err(|e| Error::io(format!("sync {}", self.partial.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", self.partial.display()), e))?
            .len();
        self.committed = ContentListState {
            len,
            rows: self.rows,
        };
        Ok(self.committed)
    }

    /// Cuts the list back to its last commit.
    pub fn rollback(&mut self) -> Result<()> {
        // Buffered rows are flushed into the file, then cut off with the rest; the file is
        // in append mode, so later rows go to the new end.
        self.out
            .flush()
            .map_err(|e| Error::io(format!("write {}", self.partial.display()), e))?;
        self.out
            .get_ref()
            .set_len(self.committed.len)
            .map_err(|e| Error::io(format!("truncate {}", self.partial.display()), e))?;
        self.rows = self.committed.rows;
        Ok(())
    }

    /// Commits and renames the list to its final name.
    pub fn finish(mut self) -> Result<Output> {
        let state = self.commit()?;
        rename_durable(&self.partial, &self.final_path)?;
        sync_parent(&self.final_path)?;
        Ok(Output {
            location: self.final_path.display().to_string(),
            kind: OutputKind::ContentList,
            bytes: Some(state.len),
            messages: state.rows,
        })
    }
}

/// The fields of the row of `message`, stored as `entry` (see [`ContentList`]).
fn row_fields(message: &Message, entry: &str) -> [String; 9] {
    let s = message.summary();
    let date = s
        .date
        .or(message.internal_date)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default();
    [
        date,
        s.from,
        s.to,
        s.subject,
        message.folder.to_string(),
        message.size().to_string(),
        message.sha256_hex(),
        s.message_id,
        entry.to_string(),
    ]
}

/// The CSV bytes of the header line, exactly as [`ContentList`] writes it (for writers
/// that stream the list elsewhere than a local file, e.g. to S3).
pub fn header_bytes() -> Vec<u8> {
    encode(&HEADER.map(str::to_string))
}

/// The CSV bytes of the row of `message` stored as `entry`, exactly as
/// [`ContentList::append`] writes it.
pub fn row_bytes(message: &Message, entry: &str) -> Vec<u8> {
    encode(&row_fields(message, entry))
}

fn encode(fields: &[String; 9]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(256));
    // Writing to memory cannot fail; an empty line would be the only fallback.
    if w.write_record(fields).is_err() {
        return b"\n".to_vec();
    }
    w.into_inner().unwrap_or_default()
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(format!("write {}", path.display()), io),
        other => Error::io(
            format!("write {}", path.display()),
            std::io::Error::other(format!("{other:?}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::FolderPath;

    #[test]
    fn resume_cuts_back_to_commit() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("x.csv");
        let m = Message::new(
            &b"Subject: hi, \"there\"\r\nFrom: a@b\r\n\r\nx"[..],
            FolderPath::inbox(),
            "1",
        );
        let mut l = ContentList::create(&path)?;
        l.append(&m, "INBOX/1.eml")?;
        let st = l.commit()?;
        l.append(&m, "INBOX/2.eml")?;
        l.out.flush().map_err(|e| Error::io("flush", e))?;
        drop(l);
        let l = ContentList::resume(&path, st)?;
        let out = l.finish()?;
        assert_eq!(out.messages, 1);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", e))?;
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().filter_map(|r| r.ok()).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][3], "hi, \"there\"");
        assert_eq!(&rows[0][8], "INBOX/1.eml");
        Ok(())
    }
}
