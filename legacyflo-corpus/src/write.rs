//! Writers: a tree of mboxrd files, or a Maildir++ tree.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::GenMessage;
use crate::encode::asctime_utc;

/// Escapes one folder segment for use as a file or directory name in an mbox tree:
/// `%` becomes `%25`, `/` becomes `%2F`, NUL becomes `%00`, and a leading `.` becomes `%2E`
/// (so `.`, `..` and hidden names cannot occur). Everything else, including non-ASCII,
/// is kept as UTF-8. Decoding: replace `%XX` by the byte 0xXX.
pub fn mbox_escape_segment(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    for (i, c) in seg.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            '.' if i == 0 => out.push_str("%2E"),
            _ => out.push(c),
        }
    }
    out
}

/// Path of a folder's mbox file: `dir/<seg1>/…/<last>.mbox` (segments escaped with
/// [`mbox_escape_segment`]); an empty folder path means `INBOX`.
pub fn mbox_file_path(dir: &Path, folder: &[String]) -> PathBuf {
    let mut p = dir.to_path_buf();
    let inbox = ["INBOX".to_owned()];
    let folder = if folder.is_empty() {
        &inbox[..]
    } else {
        folder
    };
    let (last, parents) = match folder.split_last() {
        Some(x) => x,
        None => return p.join("INBOX.mbox"),
    };
    for seg in parents {
        p.push(mbox_escape_segment(seg));
    }
    p.push(format!("{}.mbox", mbox_escape_segment(last)));
    p
}

/// The envelope sender for the mbox `From ` line: the address of the first `Return-Path:`
/// header, else of the first `From:` header, else `MAILER-DAEMON` (also when the address is
/// empty, not ASCII or contains whitespace).
pub fn envelope_sender(raw: &[u8]) -> String {
    let head_end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = raw.get(..head_end).unwrap_or(raw);
    let value_of = |name: &[u8]| -> Option<&[u8]> {
        head.split(|&b| b == b'\n').find_map(|line| {
            let l = line.strip_suffix(b"\r").unwrap_or(line);
            let n = name.len();
            if l.len() > n && l.get(..n).is_some_and(|p| p.eq_ignore_ascii_case(name)) {
                l.get(n..)
            } else {
                None
            }
        })
    };
    for name in [&b"return-path:"[..], &b"from:"[..]] {
        let Some(v) = value_of(name) else { continue };
        let addr = match (
            v.iter().rposition(|&b| b == b'<'),
            v.iter().rposition(|&b| b == b'>'),
        ) {
            (Some(a), Some(b)) if a < b => v.get(a + 1..b).unwrap_or_default(),
            _ => v
                .split(|b| b.is_ascii_whitespace())
                .rfind(|w| w.contains(&b'@'))
                .unwrap_or_default(),
        };
        if !addr.is_empty()
            && addr
                .iter()
                .all(|b| b.is_ascii_graphic() && *b != b'<' && *b != b'>')
        {
            return String::from_utf8_lossy(addr).into_owned();
        }
        if name == b"return-path:" {
            // `Return-Path: <>` (bounce) or junk: the sender is the mailer daemon
            return "MAILER-DAEMON".to_owned();
        }
    }
    "MAILER-DAEMON".to_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The mbox separator line for a message, without the trailing LF:
/// `From <envelope_sender> <asctime of internal_date in UTC>`,
/// e.g. `From anna@example.test Tue Mar  7 13:05:09 2023`.
pub fn mbox_from_line(raw: &[u8], internal_date: i64) -> String {
    format!(
        "From {} {}",
        envelope_sender(raw),
        asctime_utc(internal_date)
    )
}

/// Appends one message in mboxrd form: `From <sender> <asctime UTC>` LF, the raw bytes with
/// every line matching `^>*From ` prefixed by one more `>`, a LF if the message does not end
/// with one, and an empty line. Reading back: split on `From ` lines, drop the final LF,
/// remove one `>` from lines matching `^>+From `; the result is byte-identical to `raw`
/// for every message that ends with LF (all generated messages do).
pub fn write_mboxrd_message(
    out: &mut impl Write,
    raw: &[u8],
    internal_date: i64,
) -> io::Result<()> {
    writeln!(
        out,
        "From {} {}",
        envelope_sender(raw),
        asctime_utc(internal_date)
    )?;
    let mut start = 0;
    while start < raw.len() {
        let end = raw
            .get(start..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
            .map_or(raw.len(), |p| start + p + 1);
        let line = raw.get(start..end).unwrap_or_default();
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if line.get(gts..).is_some_and(|r| r.starts_with(b"From ")) {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
        start = end;
    }
    if !raw.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

/// Writes one mboxrd file per folder at [`mbox_file_path`] (created or truncated), with the
/// messages in iteration order (see [`write_mboxrd_message`]). Flags are not stored.
/// Folders may be interleaved; at most 128 files are kept open at a time.
pub fn write_mbox_tree(dir: &Path, msgs: impl IntoIterator<Item = GenMessage>) -> io::Result<()> {
    const MAX_OPEN: usize = 128;
    fs::create_dir_all(dir)?;
    let mut open: HashMap<Vec<String>, BufWriter<File>> = HashMap::new();
    let mut created: HashSet<Vec<String>> = HashSet::new();
    for msg in msgs {
        if msg.folder.iter().any(String::is_empty) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("empty folder segment in {:?}", msg.folder),
            ));
        }
        if !open.contains_key(&msg.folder) {
            if open.len() >= MAX_OPEN {
                for (_, mut w) in open.drain() {
                    w.flush()?;
                }
            }
            let path = mbox_file_path(dir, &msg.folder);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let file = if created.insert(msg.folder.clone()) {
                File::create(&path)?
            } else {
                OpenOptions::new().append(true).open(&path)?
            };
            open.insert(
                msg.folder.clone(),
                BufWriter::with_capacity(256 * 1024, file),
            );
        }
        if let Some(w) = open.get_mut(&msg.folder) {
            write_mboxrd_message(w, &msg.raw, msg.internal_date)?;
        }
    }
    for (_, mut w) in open.drain() {
        w.flush()?;
    }
    Ok(())
}

/// Escapes one folder segment for a Maildir++ directory name: the segment is first
/// encoded as IMAP modified UTF-7 ([`mutf7_encode`], Dovecot's default on-disk form), then
/// `~`, `.` and `/` are written as `~7e`, `~2e` and `~2f` (listescape-style `<char><hex>`
/// with `~` as the escape character; mUTF-7 never produces `~` itself, so this is
/// reversible).
pub fn maildir_escape_segment(seg: &str) -> String {
    legacyflo_core::codec::maildir_encode(seg)
}

/// Directory of a folder in a Maildir++ tree: `dir` itself for INBOX (`["INBOX"]` or
/// empty), else `dir/.<seg1>.<seg2>…` with [`maildir_escape_segment`] applied to each
/// segment (`["INBOX","Rechnungen"]` is `dir/.INBOX.Rechnungen`).
pub fn maildir_folder_dir(dir: &Path, folder: &[String]) -> PathBuf {
    if folder.is_empty() || (folder.len() == 1 && folder.first().is_some_and(|s| s == "INBOX")) {
        return dir.to_path_buf();
    }
    let name: Vec<String> = folder.iter().map(|s| maildir_escape_segment(s)).collect();
    dir.join(format!(".{}", name.join(".")))
}

/// Maildir info letters for IMAP system flags, sorted: `\Draft` D, `\Flagged` F,
/// `\Answered` R, `\Seen` S, `\Deleted` T (other flags are dropped).
pub fn maildir_flag_letters(flags: &[String]) -> String {
    let mut letters: Vec<char> = flags
        .iter()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// The unix time `ts` as a [`SystemTime`].
fn system_time(ts: i64) -> SystemTime {
    if ts >= 0 {
        UNIX_EPOCH + Duration::from_secs(ts.unsigned_abs())
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(ts.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Writes a Maildir++ tree: INBOX in `dir/{cur,new,tmp}`, every other folder in
/// [`maildir_folder_dir`] with `cur`, `new`, `tmp` and an empty `maildirfolder` file.
/// Each message goes to `cur/<internal_date>.M<n>P1.legacyflo:2,<letters>` (n = running
/// number over the whole tree, zero-padded to 6 digits, so names sort in write order within
/// a second; letters from [`maildir_flag_letters`]) with its mtime set to `internal_date`.
pub fn write_maildir_tree(
    dir: &Path,
    msgs: impl IntoIterator<Item = GenMessage>,
) -> io::Result<()> {
    let mut made: HashSet<PathBuf> = HashSet::new();
    // the root is INBOX and always a valid Maildir
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    made.insert(dir.to_path_buf());
    for (n, msg) in msgs.into_iter().enumerate() {
        let fdir = maildir_folder_dir(dir, &msg.folder);
        if made.insert(fdir.clone()) {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(fdir.join(sub))?;
            }
            if fdir != dir {
                File::create(fdir.join("maildirfolder"))?;
            }
        }
        let name = format!(
            "{}.M{n:06}P1.legacyflo:2,{}",
            msg.internal_date,
            maildir_flag_letters(&msg.flags)
        );
        let path = fdir.join("cur").join(name);
        let mut f = File::create(&path)?;
        f.write_all(&msg.raw)?;
        let t = system_time(msg.internal_date);
        f.set_times(FileTimes::new().set_accessed(t).set_modified(t))?;
    }
    Ok(())
}
