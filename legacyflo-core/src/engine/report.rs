//! The run report: a human summary and JSON.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::message::FolderPath;
use crate::sink::{Output, Placement};

/// At most this many failure reasons are kept per folder; the count goes on.
pub const MAX_FAILURES_KEPT: usize = 1000;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every selected message was stored.
    Done,
    /// Finished, but some messages were skipped (see the folders' failures).
    DoneWithSkips,
    /// Stopped by an error; re-running with the same state resumes.
    Failed,
    /// A dry run: folders and counts only.
    DryRun,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Done => "done",
            RunStatus::DoneWithSkips => "done with skipped messages",
            RunStatus::Failed => "failed",
            RunStatus::DryRun => "dry run",
        })
    }
}

/// A message that was not stored, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The source's id for it.
    pub source_id: String,
    /// Why.
    pub reason: String,
}

/// Counts for one folder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderReport {
    /// The folder.
    pub folder: FolderPath,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Messages outside the date window (not selected).
    pub filtered: u64,
    /// Messages the destination already held.
    pub duplicates: u64,
    /// Messages that could not be stored (unreadable or rejected); reasons in `failures`.
    pub skipped: u64,
    /// Reasons, at most [`MAX_FAILURES_KEPT`].
    pub failures: Vec<Failure>,
    /// Messages the source listed and then found deleted at the source during the run
    /// ([`crate::SourceEvent::Expunged`]); not an error.
    #[serde(default)]
    pub expunged: u64,
    /// What the source noticed about the folder ([`crate::FolderInfo::notes`]).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Whether the whole folder was processed.
    pub complete: bool,
}

impl FolderReport {
    /// Records a skipped message.
    pub fn skip(&mut self, source_id: &str, reason: &str) {
        self.skipped += 1;
        if self.failures.len() < MAX_FAILURES_KEPT {
            self.failures.push(Failure {
                source_id: source_id.to_string(),
                reason: reason.to_string(),
            });
        }
    }
}

/// The report of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The request type.
    pub request_type: String,
    /// How it ended.
    pub status: RunStatus,
    /// The error that stopped it, if any.
    pub error: Option<String>,
    /// Per-folder counts, in source order.
    pub folders: Vec<FolderReport>,
    /// Files and mailboxes written.
    pub outputs: Vec<Output>,
    /// Whether this run resumed an earlier one.
    pub resumed: bool,
    /// Retries after temporary errors.
    pub retries: u64,
    /// Start of this run.
    pub start: DateTime<Utc>,
    /// End of this run.
    pub end: DateTime<Utc>,
    /// Seconds this run took.
    pub duration_secs: f64,
    /// Messages stored by this run (the folders' counts include earlier runs).
    pub run_messages: u64,
    /// Bytes stored by this run.
    pub run_bytes: u64,
    /// Where each message stored by this run went, when the sink says (IMAP: the
    /// `APPENDUID` as `UIDVALIDITY:UID`), in commit order. Messages stored by an earlier,
    /// interrupted run of the request are not listed.
    #[serde(default)]
    pub placements: Vec<Placement>,
}

/// Sums over all folders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Not selected by the date window.
    pub filtered: u64,
    /// Already present.
    pub duplicates: u64,
    /// Not stored.
    pub skipped: u64,
    /// Deleted at the source during the run.
    #[serde(default)]
    pub expunged: u64,
}

impl Report {
    /// A new report for `request_type`, started now.
    pub fn new(request_type: &str) -> Self {
        let now = Utc::now();
        Report {
            request_type: request_type.to_string(),
            status: RunStatus::Done,
            error: None,
            folders: Vec::new(),
            outputs: Vec::new(),
            resumed: false,
            retries: 0,
            start: now,
            end: now,
            duration_secs: 0.0,
            run_messages: 0,
            run_bytes: 0,
            placements: Vec::new(),
        }
    }

    /// Sums over the folders.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for f in &self.folders {
            t.messages += f.messages;
            t.bytes += f.bytes;
            t.filtered += f.filtered;
            t.duplicates += f.duplicates;
            t.skipped += f.skipped;
            t.expunged += f.expunged;
        }
        t
    }

    /// The report as JSON, with a `totals` member added.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let (Some(obj), Ok(t)) = (v.as_object_mut(), serde_json::to_value(self.totals())) {
            obj.insert("totals".to_string(), t);
        }
        v
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.totals();
        writeln!(
            f,
            "{}: {}{}",
            self.request_type,
            self.status,
            if self.resumed { " (resumed)" } else { "" }
        )?;
        if let Some(e) = &self.error {
            writeln!(f, "  error: {e}")?;
        }
        let rate = if self.duration_secs > 0.0 && self.run_messages > 0 {
            format!(
                "; this run {} messages, {:.0} msg/s, {}/s",
                self.run_messages,
                self.run_messages as f64 / self.duration_secs,
                human_bytes((self.run_bytes as f64 / self.duration_secs) as u64)
            )
        } else {
            String::new()
        };
        let expunged = if t.expunged > 0 {
            format!(", {} expunged at the source during the run", t.expunged)
        } else {
            String::new()
        };
        writeln!(
            f,
            "  {} messages, {} in {} folders; {} skipped, {} duplicates, {} outside the date window{expunged}; {:.1}s{rate}",
            t.messages,
            human_bytes(t.bytes),
            self.folders.len(),
            t.skipped,
            t.duplicates,
            t.filtered,
            self.duration_secs
        )?;
        for fr in &self.folders {
            let name = if fr.folder.is_root() {
                "(root)".to_string()
            } else {
                fr.folder.to_string()
            };
            writeln!(
                f,
                "  {:<40} {:>7} msgs {:>10}{}{}{}{}",
                name,
                fr.messages,
                human_bytes(fr.bytes),
                if fr.skipped > 0 {
                    format!(", {} skipped", fr.skipped)
                } else {
                    String::new()
                },
                if fr.duplicates > 0 {
                    format!(", {} duplicates", fr.duplicates)
                } else {
                    String::new()
                },
                if fr.filtered > 0 {
                    format!(", {} filtered", fr.filtered)
                } else {
                    String::new()
                },
                if fr.expunged > 0 {
                    format!(", {} expunged", fr.expunged)
                } else {
                    String::new()
                },
            )?;
            for note in &fr.notes {
                writeln!(f, "      note: {note}")?;
            }
            for fail in fr.failures.iter().take(5) {
                writeln!(f, "      skipped {}: {}", fail.source_id, fail.reason)?;
            }
            if fr.failures.len() > 5 {
                writeln!(
                    f,
                    "      … {} more in the JSON report",
                    fr.skipped.saturating_sub(5)
                )?;
            }
        }
        if !self.placements.is_empty() {
            writeln!(
                f,
                "  destination ids of {} messages stored by this run: `placements` in the JSON report",
                self.placements.len()
            )?;
        }
        for o in &self.outputs {
            let size = o.bytes.map(human_bytes).unwrap_or_default();
            writeln!(
                f,
                "  wrote {} ({} messages{}{})",
                o.location,
                o.messages,
                if size.is_empty() { "" } else { ", " },
                size
            )?;
        }
        Ok(())
    }
}
