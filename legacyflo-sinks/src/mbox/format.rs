//! How a message is written to an mboxrd file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use legacyflo_core::{FolderPath, Message};

use crate::util::header_section;
use legacyflo_core::codec::{MBOX_NO_EOL_TOKEN, escape_segment};

/// The file of `folder` relative to the tree's root: `<seg1>/…/<last>.mbox` with every
/// segment escaped; the root path is `INBOX.mbox`.
pub(crate) fn relative_path(folder: &FolderPath) -> PathBuf {
    let segs = folder.segments();
    let Some((last, parents)) = segs.split_last() else {
        return PathBuf::from("INBOX.mbox");
    };
    let mut p = PathBuf::new();
    for s in parents {
        p.push(escape_segment(s));
    }
    p.push(format!("{}.mbox", escape_segment(last)));
    p
}

/// Whether every component of `rel` fits in a file name (255 bytes).
pub(crate) fn fits(rel: &Path) -> bool {
    rel.components().all(|c| c.as_os_str().len() <= 255)
}

/// Writes `message` in mboxrd form: the `From ` line, the bytes with every line matching
/// `^>*From ` given one more `>`, a line feed if the message does not end with one (then
/// the `From ` line carries [`MBOX_NO_EOL_TOKEN`]), and a blank line. Returns the bytes
/// written.
pub(crate) fn write_message(out: &mut impl Write, message: &Message) -> io::Result<u64> {
    let raw = &message.raw[..];
    let no_eol = !raw.is_empty() && !raw.ends_with(b"\n");
    let line = from_line(message, no_eol);
    out.write_all(line.as_bytes())?;
    let mut written = line.len() as u64;
    let mut start = 0;
    while start < raw.len() {
        let end = raw[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| start + p + 1);
        let l = &raw[start..end];
        let gts = l.iter().take_while(|&&b| b == b'>').count();
        if l[gts..].starts_with(b"From ") {
            out.write_all(b">")?;
            written += 1;
        }
        out.write_all(l)?;
        written += l.len() as u64;
        start = end;
    }
    if no_eol {
        out.write_all(b"\n")?;
        written += 1;
    }
    out.write_all(b"\n")?;
    Ok(written + 1)
}

/// `From <sender> <asctime of the date in UTC>[ legacyflo-no-eol]\n`. The date is the
/// internal date, else the `Date:` header, else the epoch.
pub(crate) fn from_line(message: &Message, no_eol: bool) -> String {
    let date: DateTime<Utc> = message
        .internal_date
        .or_else(|| message.summary().date)
        .unwrap_or_default();
    let mut line = format!(
        "From {} {}",
        envelope_sender(&message.raw),
        date.format("%a %b %e %H:%M:%S %Y")
    );
    if no_eol {
        line.push(' ');
        line.push_str(MBOX_NO_EOL_TOKEN);
    }
    line.push('\n');
    line
}

/// The address of the first `Return-Path:` header, else of the first `From:` header, else
/// `MAILER-DAEMON` (also for `Return-Path: <>` and for addresses that are empty, not ASCII
/// or contain white space).
pub(crate) fn envelope_sender(raw: &[u8]) -> String {
    let head = header_section(raw);
    let value_of = |name: &[u8]| -> Option<&[u8]> {
        head.split(|&b| b == b'\n').find_map(|line| {
            let l = line.strip_suffix(b"\r").unwrap_or(line);
            let n = name.len();
            (l.len() > n && l[..n].eq_ignore_ascii_case(name)).then(|| &l[n..])
        })
    };
    for name in [&b"return-path:"[..], &b"from:"[..]] {
        let Some(v) = value_of(name) else { continue };
        let addr = match (
            v.iter().rposition(|&b| b == b'<'),
            v.iter().rposition(|&b| b == b'>'),
        ) {
            (Some(a), Some(b)) if a < b => &v[a + 1..b],
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
            return "MAILER-DAEMON".to_string();
        }
    }
    "MAILER-DAEMON".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn render(raw: &[u8]) -> Vec<u8> {
        let mut m = Message::new(raw.to_vec(), FolderPath::inbox(), "1");
        m.internal_date = Utc.with_ymd_and_hms(2024, 11, 1, 9, 5, 7).single();
        let mut out = Vec::new();
        let n = write_message(&mut out, &m).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    #[test]
    fn mboxrd_quoting_and_terminators() {
        assert_eq!(
            render(b"Return-Path: <a@b.c>\nX: y\n\nFrom x\n>From y\nFromage\n"),
            b"From a@b.c Fri Nov  1 09:05:07 2024\nReturn-Path: <a@b.c>\nX: y\n\n>From x\n>>From y\nFromage\n\n"
        );
        assert_eq!(
            render(b"From: Anna <anna@x.test>\r\n\r\nend"),
            b"From anna@x.test Fri Nov  1 09:05:07 2024 legacyflo-no-eol\nFrom: Anna <anna@x.test>\r\n\r\nend\n\n"
        );
        assert_eq!(
            render(b""),
            b"From MAILER-DAEMON Fri Nov  1 09:05:07 2024\n\n"
        );
    }

    #[test]
    fn senders() {
        assert_eq!(
            envelope_sender(b"Return-Path: <>\nFrom: a@b\n\n"),
            "MAILER-DAEMON"
        );
        assert_eq!(envelope_sender(b"From: \"A B\" <a@b>\n\n"), "a@b");
        assert_eq!(
            envelope_sender(b"Subject: x\n\nFrom: a@b\n"),
            "MAILER-DAEMON"
        );
        assert_eq!(envelope_sender(b"\x89PNG"), "MAILER-DAEMON");
    }

    #[test]
    fn paths() {
        assert_eq!(
            relative_path(&FolderPath::new(["Projekte", "Entwürfe"])),
            PathBuf::from("Projekte/Entwürfe.mbox")
        );
        assert_eq!(
            relative_path(&FolderPath::new(["a/b", ".x"])),
            PathBuf::from("a%2Fb/%2Ex.mbox")
        );
        assert_eq!(
            relative_path(&FolderPath::root()),
            PathBuf::from("INBOX.mbox")
        );
    }
}
