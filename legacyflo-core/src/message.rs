//! The message model: raw RFC 5322 bytes plus the metadata a migration must keep.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A folder path as segments, e.g. `["Projekte", "Entwürfe"]`.
///
/// Segments are never joined with a separator inside the model, so a `/` or `.` inside a
/// name survives any backend. The empty path is the root of a mailbox (it holds no
/// messages of its own in most backends). Segments are never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FolderPath(Vec<String>);

impl FolderPath {
    /// The root (empty) path.
    pub fn root() -> Self {
        FolderPath(Vec::new())
    }

    /// The inbox, `["INBOX"]`.
    pub fn inbox() -> Self {
        FolderPath(vec!["INBOX".to_string()])
    }

    /// Builds a path from segments; empty segments are dropped.
    pub fn new<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FolderPath(
            segments
                .into_iter()
                .map(Into::into)
                .filter(|s: &String| !s.is_empty())
                .collect(),
        )
    }

    /// Splits `s` on `separator` into a path; empty pieces are dropped.
    pub fn parse(s: &str, separator: char) -> Self {
        FolderPath::new(s.split(separator))
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last segment, if any.
    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The segments joined with `separator`.
    pub fn join(&self, separator: &str) -> String {
        self.0.join(separator)
    }

    /// A new path with `segment` appended.
    pub fn child(&self, segment: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        let s = segment.into();
        if !s.is_empty() {
            v.push(s);
        }
        FolderPath(v)
    }

    /// Whether `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &FolderPath) -> bool {
        self.0.len() >= prefix.0.len() && self.0.iter().zip(&prefix.0).all(|(a, b)| a == b)
    }

    /// `self` with `prefix` prepended.
    pub fn under(&self, prefix: &FolderPath) -> Self {
        let mut v = prefix.0.clone();
        v.extend(self.0.iter().cloned());
        FolderPath(v)
    }
}

impl fmt::Display for FolderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// A message flag, as IMAP defines them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Flag {
    /// `\Seen`: read.
    Seen,
    /// `\Answered`: replied to.
    Answered,
    /// `\Flagged`: marked important.
    Flagged,
    /// `\Deleted`: marked for deletion.
    Deleted,
    /// `\Draft`: a draft.
    Draft,
    /// A keyword (user flag), e.g. `$Forwarded` or `Junk`.
    Keyword(String),
}

impl Flag {
    /// Parses an IMAP flag atom (`\Seen`, `$Forwarded`, …); system flags match case-insensitively.
    /// `\Recent` and the empty string give `None`.
    pub fn from_imap(s: &str) -> Option<Flag> {
        let lower = s.to_ascii_lowercase();
        Some(match lower.as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            "\\recent" | "" => return None,
            _ => Flag::Keyword(s.to_string()),
        })
    }

    /// The IMAP form of the flag.
    pub fn as_imap(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
        }
    }

    /// The Maildir info letter of a system flag (`S`, `R`, `F`, `T`, `D`), `None` for keywords.
    pub fn maildir_letter(&self) -> Option<char> {
        match self {
            Flag::Seen => Some('S'),
            Flag::Answered => Some('R'),
            Flag::Flagged => Some('F'),
            Flag::Deleted => Some('T'),
            Flag::Draft => Some('D'),
            Flag::Keyword(_) => None,
        }
    }

    /// The flag of a Maildir info letter; `P` (passed) and unknown letters give `None`.
    pub fn from_maildir_letter(c: char) -> Option<Flag> {
        match c {
            'S' => Some(Flag::Seen),
            'R' => Some(Flag::Answered),
            'F' => Some(Flag::Flagged),
            'T' => Some(Flag::Deleted),
            'D' => Some(Flag::Draft),
            _ => None,
        }
    }
}

/// One message in flight: its exact bytes and the metadata around them.
///
/// `raw` is never rewritten by legacyflo: what a source yields is what a byte-exact sink
/// stores. Cloning is cheap (`Bytes` is reference counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The RFC 5322 message exactly as the source holds it (may be malformed).
    pub raw: Bytes,
    /// The folder it belongs to.
    pub folder: FolderPath,
    /// Its flags, without duplicates.
    pub flags: Vec<Flag>,
    /// When the source received it (IMAP INTERNALDATE, the mbox `From ` line, a file's mtime).
    pub internal_date: Option<DateTime<Utc>>,
    /// Labels (Gmail labels or categories), kept as metadata.
    pub labels: Vec<String>,
    /// An id that is stable across runs of the same source and unique within its folder
    /// (IMAP `UIDVALIDITY:UID`, an mbox byte offset, a file name, a Gmail message id).
    pub source_id: String,
}

impl Message {
    /// A message in `folder` with no metadata but its bytes and source id.
    pub fn new(raw: impl Into<Bytes>, folder: FolderPath, source_id: impl Into<String>) -> Self {
        Message {
            raw: raw.into(),
            folder,
            flags: Vec::new(),
            internal_date: None,
            labels: Vec::new(),
            source_id: source_id.into(),
        }
    }

    /// The size in bytes of `raw`.
    pub fn size(&self) -> u64 {
        self.raw.len() as u64
    }

    /// SHA-256 of `raw`, as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.raw))
    }

    /// Whether the message has `flag`.
    pub fn has_flag(&self, flag: &Flag) -> bool {
        self.flags.contains(flag)
    }

    /// The headers legacyflo reports on, parsed leniently. Never fails: a malformed
    /// message gives empty fields.
    pub fn summary(&self) -> crate::summary::Summary {
        crate::summary::Summary::parse(&self.raw)
    }

    /// The date filters apply to: the internal date, else the `Date:` header.
    pub fn effective_date(&self) -> Option<DateTime<Utc>> {
        self.internal_date.or_else(|| self.summary().date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_paths() {
        let p = FolderPath::parse("Projekte/Entwürfe", '/');
        assert_eq!(p.segments(), ["Projekte", "Entwürfe"]);
        assert_eq!(p.to_string(), "Projekte/Entwürfe");
        assert!(p.starts_with(&FolderPath::new(["Projekte"])));
        assert!(!p.starts_with(&FolderPath::new(["Proj"])));
        assert!(p.starts_with(&FolderPath::root()));
        assert_eq!(FolderPath::parse("/a//b/", '/').segments(), ["a", "b"]);
        assert_eq!(p.child("x").join("."), "Projekte.Entwürfe.x");
    }

    #[test]
    fn flags_round_trip() {
        for f in [
            "\\Seen",
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Draft",
            "$Forwarded",
        ] {
            let flag = Flag::from_imap(f).unwrap_or(Flag::Seen);
            assert_eq!(flag.as_imap(), f);
        }
        assert_eq!(Flag::from_imap("\\SEEN"), Some(Flag::Seen));
        assert_eq!(Flag::from_imap("\\Recent"), None);
        for c in ['S', 'R', 'F', 'T', 'D'] {
            assert_eq!(
                Flag::from_maildir_letter(c).and_then(|f| f.maildir_letter()),
                Some(c)
            );
        }
    }
}
