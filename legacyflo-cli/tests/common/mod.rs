//! Helpers shared by the command's integration tests.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The `legacyflo` binary under test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_legacyflo"));
    c.env_remove("RUST_LOG");
    c
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The committed sample mailbox.
pub fn sample_mailbox() -> PathBuf {
    repo().join("samples").join("mailbox")
}

/// Runs `cmd` in `dir` and returns its output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run legacyflo")
}

/// stdout + stderr as one string.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the output shows no panic or backtrace.
pub fn assert_no_panic(o: &Output) {
    let t = text(o);
    assert!(!t.contains("panicked"), "panic in output:\n{t}");
    assert!(
        !t.to_lowercase().contains("backtrace"),
        "backtrace in output:\n{t}"
    );
}

/// SHA-256 hex of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A multiset of hashes.
pub fn multiset<I: IntoIterator<Item = String>>(hashes: I) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for h in hashes {
        *m.entry(h).or_insert(0) += 1;
    }
    m
}

/// Names and SHA-256 of every `.eml` entry of a ZIP file.
pub fn zip_eml_hashes(path: &Path) -> Vec<(String, String)> {
    let file = std::fs::File::open(path).expect("open zip");
    let mut archive = zip::ZipArchive::new(file).expect("zip opens");
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("zip entry");
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().expect("UTF-8 entry name").to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read zip entry");
        out.push((name, sha256(&data)));
    }
    out
}

/// The data rows of a content-list CSV, as header → value maps.
pub fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut rd = csv::Reader::from_path(path).expect("open csv");
    let headers = rd.headers().expect("csv header").clone();
    rd.records()
        .map(|r| {
            let r = r.expect("csv row");
            headers
                .iter()
                .map(str::to_string)
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// Checks a ZIP with Python's `zipfile` (an independent reader): CRCs of every entry.
pub fn python_testzip(path: &Path) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import zipfile,sys; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)",
        ])
        .arg(path)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "python zipfile.testzip failed on {}",
        path.display()
    );
}

/// Parses a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read json");
    serde_json::from_str(&text).expect("valid json")
}
