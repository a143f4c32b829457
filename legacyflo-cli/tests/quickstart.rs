//! The README's quickstart, and `--dry-run`.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;

/// SHA-256 multiset of the sample mailbox's messages, from the generator it was made with.
fn sample_hashes() -> std::collections::HashMap<String, usize> {
    multiset(
        legacyflo_corpus::sample_mailbox()
            .iter()
            .map(|m| sha256(&m.raw)),
    )
}

#[test]
fn quickstart_archives_every_sample_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out_dir = format!("{}/out/", dir.path().display());
    let o = run_in(
        dir.path(),
        &[
            "run",
            "MBOX-S3-ZIP",
            "--source-url",
            &sample_mailbox().display().to_string(),
            "--dest-url",
            &out_dir,
            "--report",
            &report.display().to_string(),
        ],
    );
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "exit {:?}:\n{}",
        o.status.code(),
        text(&o)
    );
    assert_no_panic(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("MBOX-S3-ZIP: done"), "{stdout}");

    let expected = sample_hashes();
    let count: usize = expected.values().sum();
    let r = json(&report);
    assert_eq!(
        r["totals"]["messages"].as_u64(),
        Some(count as u64),
        "report: {r:#}"
    );
    assert_eq!(r["totals"]["skipped"].as_u64(), Some(0));

    // The default name comes from the source directory's name.
    let zip = dir.path().join("out/mailbox.zip");
    let csv = dir.path().join("out/mailbox.csv");
    assert!(
        zip.is_file(),
        "{} missing; out/ holds {:?}",
        zip.display(),
        list(&dir.path().join("out"))
    );
    assert!(csv.is_file(), "{} missing", csv.display());
    assert!(
        stdout.contains(&zip.display().to_string()),
        "report does not name the ZIP:\n{stdout}"
    );

    let entries = zip_eml_hashes(&zip);
    assert!(
        entries.iter().all(|(name, _)| name.ends_with(".eml")),
        "non-.eml entries: {entries:?}"
    );
    assert_eq!(entries.len(), count, "one .eml per message");
    assert_eq!(
        multiset(entries.into_iter().map(|e| e.1)),
        expected,
        "ZIP entries differ from the sample's bytes"
    );
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), count, "one content-list row per message");
    python_testzip(&zip);
    // The default state directory was used, relative to the working directory.
    assert!(dir.path().join(".legacyflo/state").is_dir());
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dry_run_prints_folders_and_counts_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out_dir = format!("{}/out/", dir.path().display());
    let o = run_in(
        dir.path(),
        &[
            "run",
            "MBOX-S3-ZIP",
            "--source-url",
            &sample_mailbox().display().to_string(),
            "--dest-url",
            &out_dir,
            "--dry-run",
            "--report",
            &report.display().to_string(),
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("MBOX-S3-ZIP: dry run"), "{stdout}");
    assert!(stdout.contains("INBOX"), "{stdout}");
    let r = json(&report);
    let folders = r["folders"].as_array().expect("folders");
    assert!(folders.len() > 3, "{r:#}");
    // Every folder is printed with its count.
    for f in folders {
        let name = f["folder"].as_array().map(|s| {
            s.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join("/")
        });
        let name = name
            .or_else(|| f["folder"].as_str().map(str::to_string))
            .expect("folder name");
        let n = f["messages"].as_u64().expect("count");
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&name) && l.contains(&format!(" {n} msgs"))),
            "folder {name} ({n}) not printed:\n{stdout}"
        );
    }
    let total: u64 = folders.iter().filter_map(|f| f["messages"].as_u64()).sum();
    assert_eq!(total, legacyflo_corpus::sample_mailbox().len() as u64);
    assert!(
        !dir.path().join("out").exists(),
        "dry run wrote the output directory"
    );
    assert!(!dir.path().join("state").exists(), "dry run wrote state");
    assert_eq!(list(dir.path()), vec!["report.json".to_string()]);
}

/// Deleting the outputs of a finished run and running again writes them again.
#[test]
fn rerun_after_deleting_outputs_writes_them_again() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let state = tmp.path().join("state");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/mailbox");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_legacyflo"))
            .args(["-q", "run", "MBOX-S3-ZIP", "--source-url", sample])
            .arg("--dest-url")
            .arg(format!("{}/", out.display()))
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let zip = out.join("mailbox.zip");
    assert!(zip.exists());
    std::fs::remove_dir_all(&out).unwrap();
    let again = run();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(zip.exists(), "the archive must be written again");
    assert!(out.join("mailbox.csv").exists());
}

/// Messages per folder of the sample mailbox (folder segments joined by '/').
fn sample_folder_counts() -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for msg in legacyflo_corpus::sample_mailbox() {
        *m.entry(msg.folder.join("/")).or_insert(0) += 1;
    }
    m
}

/// The README's one-command quickstart: `batch samples/quickstart.csv` writes the ZIP and
/// the PST of the sample mailbox with their content lists; the PST is read by pypff (folder
/// tree and counts) and `readpst` (one exported message per input message), readers we did
/// not write.
#[test]
fn quickstart_batch_writes_the_zip_and_a_pst_that_external_readers_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The batch file's paths are relative to the repository root: give the run the same view.
    std::os::unix::fs::symlink(repo().join("samples"), dir.path().join("samples")).unwrap();
    let report = dir.path().join("report.json");
    let o = run_in(
        dir.path(),
        &[
            "batch",
            "samples/quickstart.csv",
            "--report",
            &report.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_no_panic(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("MBOX-S3-ZIP done: 300 messages"),
        "{stdout}"
    );
    assert!(
        stdout.contains("MBOX-S3-PST done: 300 messages"),
        "{stdout}"
    );
    let out = dir.path().join("out");
    let expected = sample_folder_counts();
    let count: usize = expected.values().sum();
    let zip = out.join("mailbox.zip");
    assert_eq!(zip_eml_hashes(&zip).len(), count);
    // A content list has the data file's name, so the PST goes to its own directory.
    let pst = out.join("pst/mailbox.pst");
    assert!(
        pst.is_file(),
        "no PST; out/pst/ holds {:?}",
        list(&out.join("pst"))
    );
    for c in [out.join("mailbox.csv"), out.join("pst/mailbox.csv")] {
        assert_eq!(csv_rows(&c).len(), count, "{}", c.display());
    }

    // pypff: the folder tree below "Top of Personal Folders" and the counts per folder.
    let script = r#"
import sys, pypff
f = pypff.file(); f.open(sys.argv[1])
def walk(folder, path):
    for i in range(folder.number_of_sub_folders):
        sub = folder.get_sub_folder(i)
        p = path + [sub.name]
        if sub.number_of_sub_messages:
            print("/".join(p) + "\t" + str(sub.number_of_sub_messages))
        walk(sub, p)
root = f.get_root_folder()
for i in range(root.number_of_sub_folders):
    top = root.get_sub_folder(i)
    if top.name == "Top of Personal Folders":
        walk(top, [])
"#;
    let py = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, &pst.display().to_string()])
        .output()
        .expect("python3 with pypff (bash scripts/test.sh installs python3-pypff)");
    assert!(
        py.status.success(),
        "pypff: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let got: std::collections::BTreeMap<String, usize> = String::from_utf8_lossy(&py.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(p, n)| (p.to_string(), n.parse().unwrap()))
        .collect();
    assert_eq!(
        got, expected,
        "pypff's folder counts differ from the sample's"
    );

    // `-j 0`: readpst 0.6.76 forks a child per folder and per message by default (and with
    // `-j 1`); each child's pst_reopen() fcloses the inherited FILE*, and glibc's fclose
    // lseeks the descriptor it shares with the parent (`lseek(3, -n, SEEK_CUR)` in strace -f)
    // between the parent's own lseek and read, so the parent reads a block from the wrong
    // offset and drops a message. Without forking readpst reads deterministically.
    let export = dir.path().join("readpst");
    std::fs::create_dir_all(&export).unwrap();
    let rp = std::process::Command::new("readpst")
        .args(["-j", "0", "-e", "-8", "-q", "-o"])
        .arg(&export)
        .arg(&pst)
        .output()
        .expect("readpst (bash scripts/test.sh installs pst-utils)");
    assert!(
        rp.status.success(),
        "readpst: {}",
        String::from_utf8_lossy(&rp.stderr)
    );
    let mut exported = 0;
    let mut stack = vec![export.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                exported += 1;
            }
        }
    }
    assert_eq!(
        exported, count,
        "readpst exported {exported} of {count} messages"
    );
}
