//! `legacyflo-corpus`: writes the sample mailbox or a benchmark corpus to disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use legacyflo_corpus::{
    CorpusSpec, GenMessage, bench_corpus, sample_mailbox, write_maildir_tree, write_mbox_tree,
};

const USAGE: &str = "\
usage:
  legacyflo-corpus sample --out DIR [--format mbox|maildir]
  legacyflo-corpus bench (--messages N | --bytes N[K|M|G]) [--seed S] [--big N] [--folders N]
                         --out DIR [--format mbox|maildir]

  sample   the quickstart mailbox (300 messages, fixed seed)
  bench    a benchmark corpus: 70% 1-8 KiB, 27% 8-100 KiB, 3% 0.1-1 MiB messages,
           plus --big N messages of ~10 MiB; --bytes generates until N bytes are reached
           (K/M/G = KiB/MiB/GiB). Defaults: --seed 1, --folders 10, --big 0.
  --format mbox (default): one mboxrd file per folder, DIR/<seg>/.../<last>.mbox
           maildir: a Maildir++ tree (INBOX in DIR/cur, folders in DIR/.Seg1.Seg2)
  DIR must not exist or be empty.";

#[derive(Default)]
struct Stats {
    messages: u64,
    bytes: u64,
    folders: BTreeMap<String, (u64, u64)>,
}

impl Stats {
    fn add(&mut self, m: &GenMessage) {
        self.messages += 1;
        self.bytes += m.raw.len() as u64;
        let e = self.folders.entry(m.folder_name('/')).or_default();
        e.0 += 1;
        e.1 += m.raw.len() as u64;
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a number: {s}"))
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let Some(cmd) = args.first() else {
        return Err("missing command".to_owned());
    };
    if cmd == "-h" || cmd == "--help" || cmd == "help" {
        println!("{USAGE}");
        return Ok(());
    }
    let mut out: Option<PathBuf> = None;
    let mut format = "mbox".to_owned();
    let mut spec = CorpusSpec::default();
    let mut have_count = false;
    let mut it = args.iter().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--format" => format = value()?,
            "--messages" if cmd == "bench" => {
                spec.messages = parse_num(flag, &value()?)?;
                have_count = true;
            }
            "--bytes" if cmd == "bench" => {
                spec.total_bytes = Some(parse_size(&value()?)?);
                have_count = true;
            }
            "--seed" if cmd == "bench" => spec.seed = parse_num(flag, &value()?)?,
            "--big" if cmd == "bench" => spec.big_attachments = parse_num(flag, &value()?)?,
            "--folders" if cmd == "bench" => spec.folders = parse_num(flag, &value()?)?,
            _ => return Err(format!("unknown argument for {cmd}: {flag}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    if format != "mbox" && format != "maildir" {
        return Err(format!("--format must be mbox or maildir, not {format}"));
    }
    if out.exists() && !is_empty_dir(&out) {
        return Err(format!(
            "{} exists and is not an empty directory (remove it first)",
            out.display()
        ));
    }
    let mut stats = Stats::default();
    let result = match cmd.as_str() {
        "sample" => write(&out, &format, sample_mailbox().into_iter(), &mut stats),
        "bench" => {
            if !have_count {
                return Err("bench needs --messages N or --bytes N".to_owned());
            }
            write(&out, &format, bench_corpus(&spec), &mut stats)
        }
        _ => return Err(format!("unknown command: {cmd}")),
    };
    result.map_err(|e| format!("writing {}: {e}", out.display()))?;
    for (folder, (n, b)) in &stats.folders {
        println!("{n:>8} messages {b:>12} bytes  {folder}");
    }
    println!(
        "wrote {} messages, {} bytes, {} folders to {} ({format})",
        stats.messages,
        stats.bytes,
        stats.folders.len(),
        out.display()
    );
    Ok(())
}

fn write(
    out: &Path,
    format: &str,
    msgs: impl Iterator<Item = GenMessage>,
    stats: &mut Stats,
) -> std::io::Result<()> {
    let msgs = msgs.inspect(|m| stats.add(m));
    if format == "maildir" {
        write_maildir_tree(out, msgs)
    } else {
        write_mbox_tree(out, msgs)
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("legacyflo-corpus: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
