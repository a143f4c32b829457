//! PSTs written by the PST sink, judged by readers we did not write: `pffinfo` (libpff)
//! opens them and reports the encryption, `readpst -e -8` (libpst) exports the right
//! number of messages per folder. Both tools are installed by `bash scripts/test.sh`; a
//! missing tool fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_testkit::readpst::readpst_counts;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use legacyflo_core::{FolderPath, Message, OutputKind, Sink, WriteOutcome};
use legacyflo_sinks::pst::PstSink;
use legacyflo_testkit::corpus;

/// Fails the test when an external tool is missing.
fn require_tool(cmd: &str) {
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

/// `pffinfo`'s "Encryption type" value (the tool must succeed).
fn pffinfo_encryption(path: &Path) -> String {
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

async fn write(sink: &mut PstSink, msgs: &[Message]) {
    for m in msgs {
        sink.begin_folder(&m.folder).await.unwrap();
        let o = sink.write(m).await.unwrap();
        assert!(matches!(o, WriteOutcome::Written { .. }), "{o:?}");
    }
}

fn expected_counts(msgs: &[Message]) -> BTreeMap<String, usize> {
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for m in msgs {
        *want.entry(m.folder.join("/")).or_default() += 1;
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_mailbox_opens_in_pffinfo_and_readpst() {
    require_tool("pffinfo");
    require_tool("readpst");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out").join("sample.pst");
    let msgs = corpus::sample();
    let half = msgs.len() / 2;
    // A run that crashes after a commit, then a resumed run: what counts is the commit.
    let mut first = PstSink::new(&dest);
    first.open(None).await.unwrap();
    write(&mut first, &msgs[..half]).await;
    let state = first.commit().await.unwrap();
    write(&mut first, &msgs[half..half + 10]).await;
    drop(first);
    let mut second = PstSink::new(&dest);
    second.open(Some(state)).await.unwrap();
    write(&mut second, &msgs[half..]).await;
    let state = second.commit().await.unwrap();
    let outputs = second.finish().await.unwrap();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[0].kind, OutputKind::Archive);
    assert_eq!(outputs[0].location, dest.display().to_string());
    assert_eq!(outputs[0].messages, msgs.len() as u64);
    assert_eq!(outputs[1].kind, OutputKind::ContentList);
    assert_eq!(outputs[1].messages, msgs.len() as u64);
    assert!(dest.with_extension("csv").exists());
    let leftovers: Vec<String> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");

    // A sink restored from the last state of the finished run returns the same outputs.
    let mut again = PstSink::new(&dest);
    again.open(Some(state)).await.unwrap();
    assert_eq!(again.finish().await.unwrap(), outputs);

    assert_eq!(pffinfo_encryption(&dest), "compressible");
    let got = readpst_counts(&dest, &dir.path().join("readpst"));
    let want = expected_counts(&msgs);
    assert_eq!(got, want, "readpst: exported messages per folder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_and_unencoded_files_open_in_pffinfo_and_readpst() {
    require_tool("pffinfo");
    require_tool("readpst");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("edge.pst");
    let mut msgs = corpus::edge_cases();
    msgs.extend(corpus::generated(60, 5));
    msgs.push(Message::new(
        &b"Subject: at the root\r\nFrom: r@example.test\r\n\r\nroot\r\n"[..],
        FolderPath::root(),
        "root-1",
    ));
    let options = legacyflo_pst::WriterOptions {
        encoding: legacyflo_pst::Encoding::None,
        ..Default::default()
    };
    let mut sink = PstSink::with_options(&dest, options);
    sink.open(None).await.unwrap();
    write(&mut sink, &msgs).await;
    sink.finish().await.unwrap();
    assert_eq!(pffinfo_encryption(&dest), "none");
    let got = readpst_counts(&dest, &dir.path().join("readpst"));
    let mut want = expected_counts(&msgs);
    // Messages of the root folder are stored in INBOX.
    if let Some(n) = want.remove("") {
        *want.entry("INBOX".to_string()).or_default() += n;
    }
    assert_eq!(got, want, "readpst: exported messages per folder");
}
