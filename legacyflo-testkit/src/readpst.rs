//! `readpst` (pst-utils) as an external judge of the PST files the tests write.
//!
//! It fails (never skips) when readpst is not installed: `bash scripts/test.sh` installs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `readpst -j 0 -q -e -8 -o OUT PATH` and returns the number of exported `.eml`
/// files per folder directory below the store directory (`"Inbox"`, `"Inbox/Sub"`, …).
///
/// `-j 0`: readpst 0.6.76 forks a child per folder and per message by default (and with
/// `-j 1`); each child's `pst_reopen()` fcloses the inherited `FILE*`, and glibc's fclose
/// lseeks the descriptor it shares with the parent (`lseek(3, -n, SEEK_CUR)` in `strace -f`)
/// between the parent's own lseek and read, so the parent reads a block from the wrong
/// offset and drops a message. Without forking readpst reads deterministically.
///
/// # Panics
/// When readpst is missing, fails, or writes no store directory.
pub fn readpst_counts(path: &Path, out: &Path) -> BTreeMap<String, usize> {
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new("readpst")
        .args(["-j", "0", "-q", "-e", "-8", "-o"])
        .arg(out)
        .arg(path)
        .output()
        .expect("readpst is not installed: run `bash scripts/test.sh` (installs pst-utils)");
    assert!(
        o.status.success(),
        "readpst failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let store = std::fs::read_dir(out)
        .unwrap()
        .next()
        .expect("readpst wrote no store directory")
        .unwrap()
        .path();
    let mut map = BTreeMap::new();
    count_eml(&store, &store, &mut map);
    map
}

fn count_eml(dir: &Path, base: &Path, map: &mut BTreeMap<String, usize>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p: PathBuf = e.unwrap().path();
        if p.is_dir() {
            count_eml(&p, base, map);
        } else if p.extension().is_some_and(|e| e == "eml") {
            let rel = p
                .parent()
                .unwrap()
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            *map.entry(rel).or_default() += 1;
        }
    }
}
