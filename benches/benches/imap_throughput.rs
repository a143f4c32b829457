//! IMAP -> IMAP between two users of the test Dovecot (`scripts/test-infra.sh up`): ours
//! (the IMAP source into the IMAP vault sink, through the engine) against `mbsync` (Debian
//! `isync`), on the same generated data.
//!
//! Cases: `LEGACYFLO_BENCH_IMAP_MSGS` generated messages (default 3000), three of them
//! with a ~10 MB attachment, about 100 MiB in all; then `LEGACYFLO_BENCH_IMAP_SMALL` small
//! messages (default 100000; 0 skips): the generator's messages of at most 8 KiB, in its
//! order. For each tool: msg/s, MiB/s, peak RSS, and the time of a no-op re-run.
//! Ours has two no-op re-runs: the finished request run again (the engine reports it from
//! its checkpoint without contacting a server), and the re-run that contacts both servers
//! and finds nothing new, as mbsync's does (the finished checkpoint reopened as unfinished,
//! which is what a run killed after its last commit leaves: every folder is SELECTed and
//! searched above its checkpoint UID, the vault is logged in to).
//!
//! On the first case also IMAP -> PST end to end, against its two stages alone: IMAP
//! fetch-only (the same source into a sink that drops messages) and PST-write-only (the
//! same messages from memory into the PST sink). Target: end to end at least 0.7 times
//! the slower stage.
//!
//! Ours runs in a child process (this binary with `--ours-child`) so that its peak RSS
//! (VmHWM) does not include the generated corpus.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use legacyflo_core::request::Secret;
use legacyflo_core::{
    Engine, FolderPath, LocalStateStore, Message, Output, RunState, Sink, SinkState, WriteOutcome,
};
use legacyflo_sinks::imap::{ImapSink, ImapSinkOptions};
use legacyflo_sinks::pst::PstSink;
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

/// A sink that keeps nothing: the IMAP fetch-only stage.
struct Discard(u64);

#[async_trait]
impl Sink for Discard {
    fn kind(&self) -> &str {
        "discard"
    }
    async fn open(&mut self, _: Option<SinkState>) -> legacyflo_core::Result<()> {
        Ok(())
    }
    async fn begin_folder(&mut self, _: &FolderPath) -> legacyflo_core::Result<()> {
        Ok(())
    }
    async fn write(&mut self, _: &Message) -> legacyflo_core::Result<WriteOutcome> {
        self.0 += 1;
        Ok(WriteOutcome::Written { id: None })
    }
    async fn commit(&mut self) -> legacyflo_core::Result<SinkState> {
        Ok(serde_json::Value::Null)
    }
    async fn abort(&mut self) -> legacyflo_core::Result<()> {
        Ok(())
    }
    async fn finish(&mut self) -> legacyflo_core::Result<Vec<Output>> {
        Ok(Vec::new())
    }
}

/// The child: one engine run; prints `RESULT msgs bytes secs hwm_kb`. MODE is `vault`
/// (DST a user), `pst` (DST a file) or `fetch` (DST ignored).
fn ours_child(args: &[String]) -> i32 {
    let [mode, host, port, src, dst, state] = args else {
        eprintln!("usage: --ours-child vault|pst|fetch HOST PORT SRC DST STATE_DIR");
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
        let (kind, sink): (&str, Box<dyn Sink>) = match mode.as_str() {
            "vault" => (
                "IMAP-VAULTASTIC4",
                Box::new(ImapSink::new(ImapSinkOptions::new(
                    opts(host, port, dst),
                    ImapPreset::Vaultastic4,
                    FolderPath::root(),
                ))),
            ),
            "pst" => ("IMAP-S3-PST", Box::new(PstSink::new(dst))),
            _ => ("IMAP-S3-ZIP", Box::new(Discard(0))),
        };
        let t = Instant::now();
        let res = Engine::new(kind, source, sink)
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
    run_child("vault", host, port, src, dst, state)
}

fn run_child(
    mode: &str,
    host: &str,
    port: u16,
    src: &str,
    dst: &str,
    state: &Path,
) -> Option<Measure> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--ours-child", mode, host, &port.to_string(), src, dst])
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

/// Reopens the finished checkpoint in `state` as unfinished (every folder at its last
/// message), so that the next run contacts the servers and finds nothing new.
fn reopen(state: &Path) -> Option<()> {
    let path = state.join("bench.json");
    let mut s = RunState::from_bytes(&std::fs::read(&path).ok()?).ok()?;
    s.finished = false;
    s.outputs.clear();
    for f in &mut s.folders {
        f.done = false;
    }
    std::fs::write(&path, s.to_bytes().ok()?).ok()
}

fn rate(m: &Measure) -> f64 {
    m.msgs as f64 / m.secs
}

/// IMAP -> PST end to end against IMAP fetch-only and PST-write-only.
fn pst_stages(name: &str, host: &str, port: u16, src: &str, msgs: Vec<Message>, dir: &Path) {
    let Some(fetch) = run_child("fetch", host, port, src, "-", &dir.join("s-fetch")) else {
        eprintln!("[{name}] fetch-only run failed");
        return;
    };
    let e2e_pst = dir.join("e2e.pst");
    let Some(e2e) = run_child(
        "pst",
        host,
        port,
        src,
        &e2e_pst.display().to_string(),
        &dir.join("s-pst"),
    ) else {
        eprintln!("[{name}] IMAP -> PST run failed");
        return;
    };
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let n = msgs.len() as u64;
    let bytes: u64 = msgs.iter().map(Message::size).sum();
    let write_pst = dir.join("write.pst");
    let source = Arc::new(legacyflo_testkit::memory::MemorySource::new(msgs));
    let t = Instant::now();
    let res =
        rt.block_on(Engine::new("EML-S3-PST", source, Box::new(PstSink::new(&write_pst))).run());
    let secs = t.elapsed().as_secs_f64();
    if let Some(e) = res.error {
        eprintln!("[{name}] PST-write-only run failed: {e}");
        return;
    }
    let write = Measure {
        msgs: n,
        bytes,
        secs,
        rss_kb: 0,
    };
    let show = |what: &str, m: &Measure| {
        println!(
            "  {what:<22} {:>7} msgs {:>7.2} s {:>8.0} msg/s {:>7.1} MiB/s",
            m.msgs,
            m.secs,
            rate(m),
            m.bytes as f64 / 1048576.0 / m.secs
        );
    };
    println!("[{name}] IMAP -> PST");
    show("IMAP fetch-only", &fetch);
    show("PST write-only", &write);
    show("IMAP -> PST end to end", &e2e);
    println!(
        "  end to end / slower stage: {:.2} (target >= 0.7)",
        rate(&e2e) / rate(&fetch).min(rate(&write))
    );
}

/// One case: the first `limit` messages of `spec` whose size is at most `max_size`.
fn case(
    name: &str,
    spec: legacyflo_corpus::CorpusSpec,
    limit: usize,
    max_size: usize,
    with_pst: bool,
) -> bool {
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
    let mut kept: Vec<Message> = Vec::new();
    for g in legacyflo_corpus::bench_corpus(&spec) {
        if n as usize >= limit {
            break;
        }
        let m = legacyflo_testkit::corpus::from_generated(g, String::new());
        if m.raw.len() > max_size {
            continue;
        }
        let mut raw = Vec::with_capacity(m.raw.len() + 64);
        for (i, &b) in m.raw.iter().enumerate() {
            if b == b'\n' && (i == 0 || m.raw[i - 1] != b'\r') {
                raw.push(b'\r');
            }
            raw.push(b);
        }
        total += raw.len() as u64;
        n += 1;
        if with_pst {
            let mut k = m.clone();
            k.raw = raw.clone().into();
            k.source_id = n.to_string();
            kept.push(k);
        }
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
    let contacted =
        reopen(&state).and_then(|()| run_ours(&server.host, server.port, src, ours_dst, &state));
    println!("[{name}]");
    line(
        "ours",
        first.msgs,
        first.bytes,
        first.secs,
        first.rss_kb,
        again.secs,
    );
    match contacted {
        Some(c) => println!(
            "ours     no-op re-run contacting both servers (nothing new found): {:.3} s, peak RSS {:.1} MB; the line above: finished request reported from its checkpoint",
            c.secs,
            c.rss_kb as f64 / 1024.0
        ),
        None => eprintln!("[{name}] the server-contacting no-op re-run failed"),
    }
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
    if with_pst {
        pst_stages(name, &server.host, server.port, src, kept, dir.path());
    }
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
    let small = env("LEGACYFLO_BENCH_IMAP_SMALL", 100_000) as usize;
    let mut ok = case(
        "mixed",
        legacyflo_corpus::CorpusSpec {
            seed: 7,
            messages: msgs,
            total_bytes: None,
            big_attachments: 3,
            folders: 10,
        },
        msgs,
        usize::MAX,
        true,
    );
    if small > 0 {
        ok &= case(
            "small",
            legacyflo_corpus::CorpusSpec {
                seed: 8,
                messages: small.saturating_mul(20),
                total_bytes: None,
                big_attachments: 0,
                folders: 10,
            },
            small,
            8 << 10,
            false,
        );
    }
    if !ok {
        std::process::exit(1);
    }
}
