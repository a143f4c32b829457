//! From a `LIST` answer to folders: every mailbox the server lists becomes one folder, and
//! mailboxes whose names read the same once decoded are kept apart.
//!
//! A name is decoded from modified UTF-7 and split on the server's separator, empty
//! pieces dropped, so distinct mailboxes can meet on one path: `abs`, `/abs` and `abs/`;
//! `x/y` and `x//y`; `Foo` and a modified UTF-7 spelling of `Foo`; `INBOX` and `inbox`
//! listed as two mailboxes. Within such a group, the mailbox whose wire name is the plain
//! spelling of the path keeps the path; every other one gets a suffix on its last segment,
//! ` (` and the first 8 hex digits of the SHA-256 of its wire name `)`, which depends on
//! nothing but that name: the same on every run whatever the LIST order, so checkpoints
//! stay with their mailbox. Each member of a group gets a note saying so. A name made only
//! of separators (`/`) keeps its decoded name as its one segment.

use legacyflo_core::{FolderInfo, FolderPath};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use tracing::{debug, warn};

use super::client::{ListEntry, MailboxInfo};
use super::preset::{self, ImapPreset};

/// A folder as the last `LIST` showed it.
#[derive(Clone, Debug)]
pub(super) struct Listed {
    /// Its name on the wire (modified UTF-7).
    pub raw: String,
    pub selectable: bool,
    /// Its `STATUS` at listing time (LIST-STATUS), when the server sent it.
    pub status: Option<MailboxInfo>,
}

/// The folders of `entries` under `root` (decoded, server separator) that `preset` keeps,
/// sorted by path, every listed mailbox once (a wire name listed twice is one mailbox).
pub(super) fn folders(
    entries: Vec<ListEntry>,
    preset: ImapPreset,
    root: Option<&str>,
) -> Vec<(FolderInfo, Listed)> {
    let root: Vec<String> = match root {
        Some(r) => {
            let sep = entries.iter().find_map(|e| e.delimiter).unwrap_or('/');
            r.split(sep)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }
        None => Vec::new(),
    };
    let mut seen = HashSet::new();
    let mut by_path: BTreeMap<FolderPath, Vec<(ListEntry, String)>> = BTreeMap::new();
    for e in entries {
        if !seen.insert(e.raw_name.clone()) {
            debug!(message = "mailbox listed twice", mailbox = %e.raw_name.escape_debug());
            continue;
        }
        let full: Vec<String> = match e.delimiter {
            Some(c) => e
                .name
                .split(c)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => vec![e.name.clone()],
        };
        if !preset::keeps(preset, &e, &full) {
            debug!(message = "folder skipped by preset", folder = %e.name.escape_debug());
            continue;
        }
        let mut segs = if full.is_empty() && root.is_empty() {
            // Only separators (`/`): the name itself is the folder's one segment.
            vec![if e.name.is_empty() {
                "(unnamed)".to_string()
            } else {
                e.name.clone()
            }]
        } else {
            if full.len() <= root.len() || full[..root.len()] != root[..] {
                continue;
            }
            full[root.len()..].to_vec()
        };
        if preset::strips_inbox_prefix(preset)
            && segs.len() > 1
            && segs[0].eq_ignore_ascii_case("INBOX")
        {
            segs.remove(0);
        }
        if segs.len() == 1 && segs[0].eq_ignore_ascii_case("INBOX") {
            segs[0] = "INBOX".into();
        }
        let path = FolderPath::new(segs);
        let plain = plain_spelling(&e, &path, &root);
        by_path.entry(path).or_default().push((e, plain));
    }
    let taken: HashSet<FolderPath> = by_path.keys().cloned().collect();
    let mut used = taken.clone();
    let mut out = Vec::new();
    for (path, mut group) in by_path {
        if group.len() == 1 {
            if let Some((e, _)) = group.pop() {
                out.push(entry(e, path, Vec::new()));
            }
            continue;
        }
        group.sort_by(|a, b| a.0.raw_name.as_bytes().cmp(b.0.raw_name.as_bytes()));
        let keeper = group.iter().position(|(e, plain)| e.raw_name == *plain);
        let names: Vec<String> = group
            .iter()
            .map(|(e, _)| format!("`{}`", e.raw_name.escape_debug()))
            .collect();
        let mut named = Vec::new();
        for (i, (e, _)) in group.into_iter().enumerate() {
            let p = if Some(i) == keeper {
                path.clone()
            } else {
                suffixed(&path, &e.raw_name, &used)
            };
            used.insert(p.clone());
            named.push((e, p));
        }
        let shown = |p: &FolderPath| format!("`{}`", p.to_string().escape_debug());
        warn!(message = "mailboxes whose names read the same are kept apart", folder = %path.to_string().escape_debug(), mailboxes = %names.join(", "));
        let list: Vec<String> = named
            .iter()
            .map(|(e, p)| format!("`{}` as {}", e.raw_name.escape_debug(), shown(p)))
            .collect();
        for (e, p) in named {
            let note = format!(
                "the server lists {} mailboxes that all read as {} ({}); each is read on its own: {}",
                list.len(),
                shown(&path),
                names.join(", "),
                list.join(", ")
            );
            out.push(entry(e, p, vec![note]));
        }
    }
    out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    out
}

fn entry(e: ListEntry, path: FolderPath, notes: Vec<String>) -> (FolderInfo, Listed) {
    let info = FolderInfo {
        selectable: !e.noselect,
        special_use: e.special_use.clone(),
        notes,
        ..FolderInfo::new(path)
    };
    let listed = Listed {
        raw: e.raw_name,
        selectable: info.selectable,
        status: e.status,
    };
    (info, listed)
}

/// How the server would spell `path` (under `root`) in the plainest way: segments joined
/// by its separator, encoded in modified UTF-7.
fn plain_spelling(e: &ListEntry, path: &FolderPath, root: &[String]) -> String {
    let sep = e.delimiter.map(String::from).unwrap_or_default();
    let mut segs: Vec<&str> = root.iter().map(String::as_str).collect();
    segs.extend(path.segments().iter().map(String::as_str));
    legacyflo_core::codec::mutf7_encode(&segs.join(&sep))
}

/// `path` with ` (h)` on its last segment, `h` the first hex digits of the SHA-256 of
/// `raw`: 8, or more when that is taken already.
fn suffixed(path: &FolderPath, raw: &str, used: &HashSet<FolderPath>) -> FolderPath {
    let hash = hex::encode(Sha256::digest(raw.as_bytes()));
    let mut segs = path.segments().to_vec();
    let last = segs.pop().unwrap_or_default();
    for len in [8, 16, 64] {
        let mut s = segs.clone();
        s.push(format!("{last} ({})", &hash[..len]));
        let p = FolderPath::new(s);
        if !used.contains(&p) {
            return p;
        }
    }
    // 64 hex digits of SHA-256 taken by another mailbox's name: add its length too.
    let mut s = segs;
    s.push(format!("{last} ({hash}-{})", raw.len()));
    FolderPath::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(raw: &str) -> ListEntry {
        ListEntry {
            raw_name: raw.into(),
            name: legacyflo_core::codec::mutf7_decode(raw),
            delimiter: Some('/'),
            noselect: false,
            special_use: None,
            attributes: vec![],
            status: None,
        }
    }

    fn paths(names: &[&str]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = folders(
            names.iter().map(|n| e(n)).collect(),
            ImapPreset::Generic,
            None,
        )
        .into_iter()
        .map(|(i, l)| (l.raw, i.path.to_string()))
        .collect();
        v.sort();
        v
    }

    #[test]
    fn every_listed_mailbox_is_one_folder_whatever_the_order() {
        let names = [
            "abs",
            "/abs",
            "abs/",
            "x/y",
            "x//y",
            "Foo",
            "&AEYAbwBv-",
            "INBOX",
            "inbox",
            "/",
        ];
        let got = paths(&names);
        assert_eq!(got.len(), names.len(), "{got:#?}");
        let distinct: HashSet<&String> = got.iter().map(|(_, p)| p).collect();
        assert_eq!(distinct.len(), names.len(), "{got:#?}");
        let mut rev = names;
        rev.reverse();
        assert_eq!(paths(&rev), got);
        let plain = |raw: &str| got.iter().find(|(r, _)| r == raw).map(|(_, p)| p.clone());
        assert_eq!(plain("abs").as_deref(), Some("abs"));
        assert_eq!(plain("x/y").as_deref(), Some("x/y"));
        assert_eq!(plain("Foo").as_deref(), Some("Foo"));
        assert_eq!(plain("INBOX").as_deref(), Some("INBOX"));
        assert_eq!(plain("/").as_deref(), Some("/"));
        let h = hex::encode(Sha256::digest(b"/abs"));
        assert_eq!(plain("/abs"), Some(format!("abs ({})", &h[..8])));
        // The same mailbox listed twice is read once.
        assert_eq!(paths(&["abs", "abs"]).len(), 1);
    }

    #[test]
    fn a_group_notes_every_member() {
        let got = folders(vec![e("x/y"), e("x//y")], ImapPreset::Generic, None);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(i, _)| i.notes.len() == 1), "{got:#?}");
        assert!(got[0].0.notes[0].contains("`x//y`"), "{:?}", got[0].0.notes);
        assert!(
            folders(vec![e("a")], ImapPreset::Generic, None)[0]
                .0
                .notes
                .is_empty()
        );
    }
}
