//! Shared helpers for the PST tests: a generated corpus and the external validators.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use legacyflo_pst::{MessageMeta, PstWriter, VolumeSummary, WriterOptions};

#[allow(clippy::module_inception)]
pub mod corpus;
pub mod ndb_map;
pub use corpus::Msg;

/// Every message of a PST held in memory, by node id: its rebuilt bytes, or the reader's
/// error; `Err` when the file is refused or its folders cannot be listed.
pub type Read = BTreeMap<u32, Result<Vec<u8>, String>>;

/// Reads every message of every folder of `bytes` with [`legacyflo_pst::PstReader`].
pub fn read_every_message(bytes: Vec<u8>) -> Result<Read, String> {
    let r = legacyflo_pst::PstReader::from_bytes(bytes).map_err(|e| e.to_string())?;
    let mut out = Read::new();
    for f in r.all_folders().map_err(|e| e.to_string())? {
        for nid in r.message_ids(&f).map_err(|e| e.to_string())? {
            out.insert(
                nid,
                r.message(nid).map(|m| m.raw).map_err(|e| e.to_string()),
            );
        }
    }
    Ok(out)
}

/// Runs the ignored test `test` of this test binary in a child process started by
/// `program args… <this binary> <test args>` (e.g. `taskset -c 0`, or `sh -c` with a
/// resource limit), and fails unless it ran and passed.
pub fn run_ignored_child(program: &str, args: &[&str], test: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(program)
        .args(args)
        .arg(&exe)
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
}

/// Fails the test when an external tool is missing.
pub fn require_tool(cmd: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{cmd}` is not installed: run `bash scripts/test.sh` (installs pst-utils, pff-tools, python3-pypff)"
    );
}

pub fn require_pypff() {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import pypff"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 module pypff is missing: run `bash scripts/test.sh` (installs python3-pypff)"
    );
}

/// Writes `msgs` into a new PST; returns the volumes.
pub fn write_pst(path: &Path, msgs: &[Msg], options: WriterOptions) -> Vec<VolumeSummary> {
    let mut w = PstWriter::create(path, options).unwrap();
    for m in msgs {
        let segs: Vec<&str> = m.folder.iter().map(String::as_str).collect();
        let f = w.folder(&segs).unwrap();
        let meta = MessageMeta {
            read: m.read,
            flagged: false,
            internal_date: None,
        };
        w.add_message(f, &m.raw, &meta).unwrap();
    }
    w.finish().unwrap()
}

/// Expected messages per folder path ("A/B").
pub fn expected_counts(msgs: &[Msg]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for msg in msgs {
        for i in 1..=msg.folder.len() {
            m.entry(msg.folder[..i].join("/")).or_insert(0);
        }
        *m.entry(msg.folder.join("/")).or_insert(0) += 1;
    }
    m
}

/// Statistics of an outlook-pst walk.
#[derive(Debug, Default)]
pub struct Walk {
    pub folders: usize,
    pub messages: usize,
    pub recipients: usize,
    pub attachments: usize,
    pub embedded: usize,
    pub errors: Vec<String>,
    /// Embedded-message attachments outlook-pst 1.2.0 cannot open: it reports
    /// "Missing PidTagAttachMethod" for every afEmbeddedMessage attachment, also on the
    /// Microsoft-written pstsdk__submessage.pst / ruby-msg__msgInMsg.pst (see
    /// `outlook_pst_limitation_on_reference_files`).
    pub embedded_unreadable: usize,
    /// By-value attachments whose data is zero-length, which outlook-pst 1.2.0 cannot
    /// open: Outlook (and the PST SDK) store a zero-length value as HNID 0, which
    /// outlook-pst reads as PtypNull and then refuses as attachment data
    /// (`InvalidMessageObjectData(Null)`), also on the Outlook-written
    /// pstconv__outlook.pst (see `outlook_pst_limitation_on_zero_length_attachments`).
    pub zero_length_unreadable: usize,
    /// messages per folder path below the IPM subtree
    pub counts: BTreeMap<String, usize>,
}

/// outlook-pst's error for attachment data it read as PtypNull (`InvalidMessageObjectData(Null)`).
pub fn is_null_attachment_data(e: &str) -> bool {
    e.starts_with("Invalid PidTagAttachDataObject") && e.ends_with(": Null")
}

/// Walks every folder, message, recipient and attachment with outlook-pst (Unicode files).
pub fn outlook_walk(path: &Path) -> Walk {
    use outlook_pst::UnicodePstFile;
    use outlook_pst::messaging::attachment::{Attachment, AttachmentData, UnicodeAttachment};
    use outlook_pst::messaging::message::{Message, UnicodeMessage};
    use outlook_pst::messaging::store::{Store, UnicodeStore};
    use outlook_pst::ndb::node_id::NodeId;

    let mut walk = Walk::default();
    let pst = match UnicodePstFile::open(path) {
        Ok(p) => Rc::new(p),
        Err(e) => {
            walk.errors.push(format!("open: {e}"));
            return walk;
        }
    };
    let store = match UnicodeStore::read(pst) {
        Ok(s) => s,
        Err(e) => {
            walk.errors.push(format!("store: {e}"));
            return walk;
        }
    };
    fn table_rows(
        t: &Rc<dyn outlook_pst::ltp::table_context::TableContext>,
        errors: &mut Vec<String>,
    ) -> Vec<u32> {
        let ctx = t.context();
        let mut ids = Vec::new();
        for row in t.rows_matrix() {
            ids.push(u32::from(row.id()));
            match row.columns(ctx) {
                Ok(cols) => {
                    for (c, v) in ctx.columns().iter().zip(cols) {
                        if let Some(v) = v
                            && let Err(e) = t.read_column(&v, c.prop_type())
                        {
                            errors.push(format!("column {:04X}: {e}", c.prop_id()));
                        }
                    }
                }
                Err(e) => errors.push(format!("row: {e}")),
            }
        }
        ids
    }
    fn walk_message(m: &Rc<dyn Message>, walk: &mut Walk) {
        if let Some(r) = m.recipient_table() {
            walk.recipients += table_rows(r, &mut walk.errors).len();
        } else {
            walk.errors.push("message without recipient table".into());
        }
    }
    let mut stack: Vec<(u32, String)> = vec![(0x8022, String::new())];
    while let Some((nid, path)) = stack.pop() {
        let eid = match store.properties().make_entry_id(NodeId::from(nid)) {
            Ok(e) => e,
            Err(e) => {
                walk.errors.push(format!("entry id {nid:x}: {e}"));
                continue;
            }
        };
        let folder = match store.open_folder(&eid) {
            Ok(f) => f,
            Err(e) => {
                walk.errors.push(format!("folder {nid:x}: {e}"));
                continue;
            }
        };
        walk.folders += 1;
        let name = folder.properties().display_name().unwrap_or_default();
        let _ = folder
            .properties()
            .content_count()
            .map_err(|e| walk.errors.push(format!("count: {e}")));
        let Some(h) = folder.hierarchy_table() else {
            walk.errors
                .push(format!("folder {name}: no hierarchy table"));
            continue;
        };
        let mut child_names = Vec::new();
        {
            let ctx = h.context();
            for row in h.rows_matrix() {
                let id = u32::from(row.id());
                let mut cname = String::new();
                if let Ok(cols) = row.columns(ctx) {
                    for (c, v) in ctx.columns().iter().zip(cols) {
                        if c.prop_id() == 0x3001
                            && let Some(v) = v
                            && let Ok(outlook_pst::ltp::prop_context::PropertyValue::Unicode(s)) =
                                h.read_column(&v, c.prop_type())
                        {
                            cname = s.to_string();
                        }
                    }
                }
                child_names.push((id, cname));
            }
        }
        for (id, cname) in child_names {
            let p = if path.is_empty() {
                cname
            } else {
                format!("{path}/{cname}")
            };
            stack.push((id, p));
        }
        let Some(c) = folder.contents_table() else {
            walk.errors
                .push(format!("folder {name}: no contents table"));
            continue;
        };
        let ids = table_rows(c, &mut walk.errors);
        if !path.is_empty() {
            walk.counts.insert(path.clone(), ids.len());
        }
        if folder.associated_table().is_none() {
            walk.errors.push(format!("folder {name}: no FAI table"));
        }
        for id in ids {
            walk.messages += 1;
            let eid = match store.properties().make_entry_id(NodeId::from(id)) {
                Ok(e) => e,
                Err(e) => {
                    walk.errors.push(format!("entry id {id:x}: {e}"));
                    continue;
                }
            };
            let msg = match UnicodeMessage::read(store.clone(), &eid, None) {
                Ok(m) => m,
                Err(e) => {
                    walk.errors.push(format!("message {id:x}: {e}"));
                    continue;
                }
            };
            let dynm: Rc<dyn Message> = msg.clone();
            walk_message(&dynm, &mut walk);
            if let Some(at) = msg.attachment_table() {
                for aid in table_rows(at, &mut walk.errors) {
                    match UnicodeAttachment::read(msg.clone(), NodeId::from(aid), None) {
                        Ok(a) => {
                            walk.attachments += 1;
                            if let Some(AttachmentData::Message(m)) = a.data() {
                                walk.embedded += 1;
                                walk_message(m, &mut walk);
                            }
                        }
                        Err(e) if e.to_string().contains("Missing PidTagAttachMethod") => {
                            walk.embedded_unreadable += 1;
                        }
                        Err(e) if is_null_attachment_data(&e.to_string()) => {
                            walk.zero_length_unreadable += 1;
                        }
                        Err(e) => walk
                            .errors
                            .push(format!("attachment {aid:x} of {id:x}: {e}")),
                    }
                }
            }
        }
    }
    walk
}

/// Messages per folder path (below the IPM subtree) as pypff sees them; also reads every
/// subject, body and attachment. Panics on any pypff exception.
pub fn pypff_counts(path: &Path) -> BTreeMap<String, usize> {
    pypff_counts_opt(path, true)
}

/// Like [`pypff_counts`]; `deep` also reads every message's fields (mail files only).
pub fn pypff_counts_opt(path: &Path, deep: bool) -> BTreeMap<String, usize> {
    require_pypff();
    let script = r#"
import sys, pypff
f = pypff.file(); f.open(sys.argv[1])
root = f.get_root_folder()
top = None
for i in range(root.number_of_sub_folders):
    s = root.get_sub_folder(i)
    if s.name in ("Top of Personal Folders", "Top of Outlook data file") or s.identifier == 0x8022:
        top = s
def walk(x, path):
    n = x.number_of_sub_messages
    if path: print("%d\t%s" % (n, path))
    for i in range(n):
        m = x.get_sub_message(i)
        if sys.argv[2] != "deep": continue
        m.subject; m.plain_text_body; m.html_body; m.transport_headers
        for k in range(m.number_of_attachments):
            a = m.get_attachment(k)
            sz = a.get_size()
            if sz: a.read_buffer(sz)
    for i in range(x.number_of_sub_folders):
        s = x.get_sub_folder(i)
        walk(s, (path + "/" if path else "") + s.name)
walk(top, "")
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(if deep { "deep" } else { "count" })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pypff failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((n, p)) = line.split_once('\t') {
            m.insert(p.to_string(), n.parse().unwrap());
        }
    }
    m
}

/// Runs `readpst -e -8` and returns the exported .eml files per folder path below the store dir.
pub fn readpst_export(path: &Path, out: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    require_tool("readpst");
    std::fs::create_dir_all(out).unwrap();
    // `-j 0`: readpst 0.6.76 forks a child per folder and per message by default (and with
    // `-j 1`); each child's pst_reopen() fcloses the inherited FILE*, and glibc's fclose
    // lseeks the descriptor it shares with the parent (`lseek(3, -n, SEEK_CUR)` in strace -f)
    // between the parent's own lseek and read, so the parent reads a block from the wrong
    // offset and drops a message. Without forking readpst reads deterministically.
    let o = Command::new("readpst")
        .args(["-j", "0", "-q", "-e", "-8", "-o"])
        .arg(out)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "readpst failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut map: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let store_dir = std::fs::read_dir(out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fn rec(dir: &Path, base: &Path, map: &mut BTreeMap<String, Vec<PathBuf>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                rec(&p, base, map);
            } else if p.extension().is_some_and(|e| e == "eml") {
                let rel = p
                    .parent()
                    .unwrap()
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                map.entry(rel).or_default().push(p);
            }
        }
    }
    rec(&store_dir, &store_dir, &mut map);
    map
}

/// `pffinfo`'s "Encryption type" value.
pub fn pffinfo_encryption(path: &Path) -> String {
    require_tool("pffinfo");
    let o = Command::new("pffinfo").arg(path).output().unwrap();
    assert!(
        o.status.success(),
        "pffinfo failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Encryption type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Free bytes on the file system holding `dir` (`df`'s available figure), or `None` when
/// `dir` does not exist or `df` cannot tell.
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// A temporary directory with at least `need` bytes free, for tests that write multi-GB
/// files. `LEGACYFLO_BIG_TEST_DIR` names the parent to use; otherwise the candidate with the
/// most room among the system temp dir, `/dev/shm` (RAM-backed, where `O_DIRECT` is refused
/// and the writer's page-cache fallback is used) and `target/` wins. Fails the test, naming
/// every candidate and its free space, when none has room: a CI machine whose disk is nearly
/// full must say so, not fail later with `ENOSPC` halfway through the file.
pub fn roomy_tempdir(need: u64) -> tempfile::TempDir {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("LEGACYFLO_BIG_TEST_DIR") {
        candidates.push(PathBuf::from(d));
    } else {
        candidates.push(std::env::temp_dir());
        candidates.push(PathBuf::from("/dev/shm"));
        candidates.push(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    }
    let mut seen = Vec::new();
    let mut best: Option<(u64, PathBuf)> = None;
    for c in candidates {
        let free = free_bytes(&c);
        seen.push(format!(
            "{}: {}",
            c.display(),
            free.map_or("unknown".to_string(), |f| format!(
                "{:.1} GB free",
                f as f64 / 1e9
            ))
        ));
        if let Some(f) = free
            && best.as_ref().is_none_or(|(b, _)| f > *b)
        {
            best = Some((f, c));
        }
    }
    match best {
        Some((free, dir)) if free >= need => {
            eprintln!(
                "big-file test writes under {} ({:.1} GB free)",
                dir.display(),
                free as f64 / 1e9
            );
            tempfile::tempdir_in(&dir).unwrap()
        }
        _ => panic!(
            "this test needs {:.1} GB of free space and no candidate has it ({}); free some \
             space or set LEGACYFLO_BIG_TEST_DIR",
            need as f64 / 1e9,
            seen.join(", ")
        ),
    }
}
