//! IMAP -> IMAP between two users of the test Dovecot (`scripts/test-infra.sh up`): ours
//! (the IMAP source into the IMAP vault sink, through the engine) against `mbsync` (Debian
//! `isync`), on the same generated data.
//!
//! Cases: `LEGACYFLO_BENCH_IMAP_MSGS` messages of about `LEGACYFLO_BENCH_IMAP_MB` MiB in
//! total (default 3000 / 100), then `LEGACYFLO_BENCH_IMAP_SMALL` small messages (default
//! 20000; 0 skips). For each tool: msg/s, MiB/s, peak RSS, and the time of a no-op re-run.
//! Ours runs in a child process (this binary with `--ours-child`) so that its peak RSS
//! (VmHWM) does not include the generated corpus.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use legacyflo_core::request::Secret;
use legacyflo_core::{Engine, FolderPath, LocalStateStore};
use legacyflo_sinks::imap::{ImapSink, ImapSinkOptions};
use legacyflo_sources::imap::{
    ConnectOptions, Credentials, ImapPreset, ImapSource, ImapSourceOptions, TlsMode,
};
use legacyflo_testkit::servers::{imap_server, reset_user, seed_maildir};

fn opts(host: &str, port: u16, user: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(
        host,
        port,
        Credentials::Login {
            user: user.into(),
            password: Secret::new(format!("{user}pw")),
        },
    );
    o.tls = TlsMode::None;
    o
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The child: one engine run; prints `RESULT msgs bytes secs hwm_kb`.
fn ours_child(args: &[String]) -> i32 {
    let [host, port, src, dst, state] = args else {
        eprintln!("usage: --ours-child HOST PORT SRC DST STATE_DIR");
        return 2;
    };
    let Ok(port) = port.parse::<u16>() else {
        return 2;
    };
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return 1;
    };
    rt.block_on(async {
        let source = Arc::new(ImapSource::new(ImapSourceOptions::new(
            opts(host, port, src),
            ImapPreset::Generic,
        )));
        let sink = Box::new(ImapSink::new(ImapSinkOptions::new(
            opts(host, port, dst),
            ImapPreset::Vaultastic4,
            FolderPath::root(),
        )));
        let t = Instant::now();
        let res = Engine::new("IMAP-VAULTASTIC4", source, sink)
            .state(Arc::new(LocalStateStore::new(Path::new(state), "bench")))
            .run()
            .await;
        let secs = t.elapsed().as_secs_f64();
        if let Some(e) = res.error {
            eprintln!("run failed: {e}");
            return 1;
        }
        let t = res.report.totals();
        eprintln!("written {} duplicates {}", t.messages, t.duplicates);
        println!(
            "RESULT {} {} {secs} {}",
            t.messages + t.duplicates,
            t.bytes,
            vm_hwm_kb()
        );
        0
    })
}

struct Measure {
    msgs: u64,
    bytes: u64,
    secs: f64,
    rss_kb: u64,
}

fn run_ours(host: &str, port: u16, src: &str, dst: &str, state: &Path) -> Option<Measure> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--ours-child", host, &port.to_string(), src, dst])
        .arg(state)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) else {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    };
    let v: Vec<&str> = line.split_whitespace().collect();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(Measure {
        msgs: v.get(1)?.parse().ok()?,
        bytes: v.get(2)?.parse().ok()?,
        secs: v.get(3)?.parse().ok()?,
        rss_kb: v.get(4)?.parse().ok()?,
    })
}

fn run_mbsync(host: &str, port: u16, src: &str, dst: &str, dir: &Path) -> Option<(f64, u64)> {
    let state = dir.join("mbsync-state");
    std::fs::create_dir_all(&state).ok()?;
    let conf = format!(
        "IMAPAccount src\nHost {host}\nPort {port}\nUser {src}\nPass {src}pw\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore src\nAccount src\n\n\
         IMAPAccount dst\nHost {host}\nPort {port}\nUser {dst}\nPass {dst}pw\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore dst\nAccount dst\n\n\
         Channel c\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nCopyArrivalDate yes\nSyncState {}/\n",
        state.display()
    );
    let rc = dir.join("mbsyncrc");
    std::fs::write(&rc, conf).ok()?;
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "MAXRSS %M", "mbsync", "-q", "-c"])
        .arg(&rc)
        .arg("c")
        .output()
        .ok()?;
    let secs = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        eprintln!("mbsync failed: {err}");
    }
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("MAXRSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some((secs, rss))
}

fn line(tool: &str, msgs: u64, bytes: u64, secs: f64, rss_kb: u64, noop: f64) {
    println!(
        "{tool:<8} {msgs:>7} msgs {:>8.1} MiB {secs:>7.2} s {:>8.0} msg/s {:>7.1} MiB/s  peak RSS {:>6.1} MB  no-op re-run {noop:.3} s",
        bytes as f64 / 1048576.0,
        msgs as f64 / secs,
        bytes as f64 / 1048576.0 / secs,
        rss_kb as f64 / 1024.0
    );
}

fn case(name: &str, spec: legacyflo_corpus::CorpusSpec) -> bool {
    let server = imap_server();
    let (src, ours_dst, mb_dst) = ("src", "dst", "empty");
    for u in [src, ours_dst, mb_dst] {
        reset_user(&server, u);
    }
    eprintln!("[{name}] generating and seeding…");
    type Seed = Vec<(Vec<u8>, &'static str, i64)>;
    let mut by_folder: std::collections::BTreeMap<Vec<String>, Seed> = Default::default();
    let mut total = 0u64;
    let mut n = 0u64;
    for g in legacyflo_corpus::bench_corpus(&spec) {
        let m = legacyflo_testkit::corpus::from_generated(g, String::new());
        let mut raw = Vec::with_capacity(m.raw.len() + 64);
        for (i, &b) in m.raw.iter().enumerate() {
            if b == b'\n' && (i == 0 || m.raw[i - 1] != b'\r') {
                raw.push(b'\r');
            }
            raw.push(b);
        }
        total += raw.len() as u64;
        n += 1;
        by_folder
            .entry(m.folder.segments().to_vec())
            .or_default()
            .push((
                raw,
                "S",
                m.internal_date.map(|d| d.timestamp()).unwrap_or(0),
            ));
    }
    for (f, msgs) in &by_folder {
        let segs: Vec<&str> = f.iter().map(String::as_str).collect();
        seed_maildir(&server, src, &segs, msgs);
    }
    drop(by_folder);
    eprintln!(
        "[{name}] {n} messages, {:.1} MiB in {src}",
        total as f64 / 1048576.0
    );
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let state = dir.path().join("state");
    let Some(first) = run_ours(&server.host, server.port, src, ours_dst, &state) else {
        eprintln!("[{name}] our run failed");
        return false;
    };
    let Some(again) = run_ours(&server.host, server.port, src, ours_dst, &state) else {
        eprintln!("[{name}] our no-op re-run failed");
        return false;
    };
    println!("[{name}]");
    line(
        "ours",
        first.msgs,
        first.bytes,
        first.secs,
        first.rss_kb,
        again.secs,
    );
    // A second request with no checkpoint against the same destination: every message is
    // recognised by identity (Message-ID, size, date) and nothing is appended.
    if let Some(f) = run_ours(
        &server.host,
        server.port,
        src,
        ours_dst,
        &dir.path().join("state2"),
    ) {
        println!(
            "ours     re-run without checkpoint (all recognised as duplicates): {:.2} s, peak RSS {:.1} MB",
            f.secs,
            f.rss_kb as f64 / 1024.0
        );
    }
    let Some((secs, rss)) = run_mbsync(&server.host, server.port, src, mb_dst, dir.path()) else {
        eprintln!("[{name}] mbsync could not run");
        return false;
    };
    let noop = run_mbsync(&server.host, server.port, src, mb_dst, dir.path())
        .map(|(s, _)| s)
        .unwrap_or(f64::NAN);
    line("mbsync", n, total, secs, rss, noop);
    println!(
        "ratio ours/mbsync msg/s: {:.2}",
        (first.msgs as f64 / first.secs) / (n as f64 / secs)
    );
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ours-child") {
        std::process::exit(ours_child(&args[2..]));
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let msgs = env("LEGACYFLO_BENCH_IMAP_MSGS", 3000) as usize;
    let mb = env("LEGACYFLO_BENCH_IMAP_MB", 100);
    let small = env("LEGACYFLO_BENCH_IMAP_SMALL", 20_000) as usize;
    let mut ok = case(
        "mixed",
        legacyflo_corpus::CorpusSpec {
            seed: 7,
            messages: msgs,
            total_bytes: Some(mb << 20),
            big_attachments: 0,
            folders: 10,
        },
    );
    if small > 0 {
        ok &= case(
            "small",
            legacyflo_corpus::CorpusSpec {
                seed: 8,
                messages: small,
                total_bytes: None,
                big_attachments: 0,
                folders: 10,
            },
        );
    }
    if !ok {
        std::process::exit(1);
    }
}
