//! The streaming mbox parser: `From ` lines, mboxrd un-quoting, dates and status flags.
//!
//! Memory is bounded whatever the file holds: lines are read in pieces of at most
//! [`PIECE`] bytes (a line without a line feed is never gathered whole), a `From ` line
//! longer than that makes its message a reported one, and a message's bytes go to a
//! [`SpillBuffer`] (memory up to its threshold, then a temporary file; no further than its
//! limit).

use std::io::{self, BufRead};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use legacyflo_core::Flag;
use legacyflo_core::codec::MBOX_NO_EOL_TOKEN;
use legacyflo_core::spill::{SpillBuffer, SpillError, SpillLimits};

/// The longest piece of a line read at once, and the longest `From ` line accepted.
pub(crate) const PIECE: usize = 64 * 1024;

/// One message as stored in an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMessage {
    /// Byte offset of its `From ` line.
    pub offset: u64,
    /// The `From ` line, with its line ending.
    pub from_line: Vec<u8>,
    /// The message bytes, un-quoted, without the separating blank line.
    pub body: Bytes,
    /// Byte offset just after it (the next `From ` line, or the end of the file).
    pub end: u64,
}

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A message.
    Message(RawMessage),
    /// Bytes before the first `From ` line that are not just blank lines.
    Junk {
        /// Where they start.
        offset: u64,
        /// Where they end (the first `From ` line or the end of the file).
        end: u64,
    },
    /// A message that cannot be taken: its `From ` line is too long, it is larger than the
    /// limit, or the file ends right after its `From ` line.
    Bad {
        /// Where its `From ` line starts.
        offset: u64,
        /// Where the next message starts (or the end of the file).
        end: u64,
        /// Why.
        reason: String,
    },
}

/// A `From ` line as read: its first [`PIECE`] bytes, and whether it was longer.
struct FromLine {
    text: Vec<u8>,
    /// Its full length when it is longer than [`PIECE`] bytes.
    too_long: Option<u64>,
}

/// The bytes of a message being read. The last line feed and a last blank line are held
/// back, so that the separating blank line and the line feed legacyflo's sink added can
/// be left out at the end without rewriting the buffer.
struct Body {
    buf: SpillBuffer,
    /// A line feed not pushed yet (the last byte so far).
    held_lf: bool,
    /// A blank line (`\n` or `\r\n`) not pushed yet, after `held_lf`.
    held_blank: Vec<u8>,
    /// Set once the message passed the limit: nothing more is kept.
    too_large: Option<u64>,
}

impl Body {
    fn new(limits: SpillLimits) -> Body {
        Body {
            buf: SpillBuffer::new(limits, None),
            held_lf: false,
            held_blank: Vec::new(),
            too_large: None,
        }
    }

    fn push_raw(&mut self, data: &[u8]) -> io::Result<()> {
        if self.too_large.is_some() || data.is_empty() {
            return Ok(());
        }
        match self.buf.push(data) {
            Ok(()) => Ok(()),
            Err(SpillError::TooLarge { limit }) => {
                self.too_large = Some(limit);
                Ok(())
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// A held blank line becomes ordinary content (its own line feed is held instead).
    fn settle_blank(&mut self) -> io::Result<()> {
        let blank = std::mem::take(&mut self.held_blank);
        if let Some(head) = blank.strip_suffix(b"\n") {
            if std::mem::take(&mut self.held_lf) {
                self.push_raw(b"\n")?;
            }
            self.push_raw(head)?;
            self.held_lf = true;
        }
        Ok(())
    }

    /// Appends a piece of a line; `blank` when it is a whole blank line.
    fn push(&mut self, piece: &[u8], blank: bool) -> io::Result<()> {
        self.settle_blank()?;
        if blank {
            self.held_blank = piece.to_vec();
            return Ok(());
        }
        if piece.is_empty() {
            return Ok(());
        }
        if std::mem::take(&mut self.held_lf) {
            self.push_raw(b"\n")?;
        }
        match piece.strip_suffix(b"\n") {
            Some(head) => {
                self.push_raw(head)?;
                self.held_lf = true;
            }
            None => self.push_raw(piece)?,
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty() && !self.held_lf && self.held_blank.is_empty()
    }

    /// The message: the held blank line is the separator and is dropped when `separator`;
    /// the held line feed is dropped when `drop_lf`.
    fn finish(mut self, separator: bool, drop_lf: bool) -> io::Result<Bytes> {
        if !separator {
            self.settle_blank()?;
        }
        if self.held_lf && !drop_lf {
            self.push_raw(b"\n")?;
        }
        self.buf.finish().map_err(io::Error::other)
    }
}

/// Reads messages one at a time from an mbox stream.
///
/// A message starts at a line beginning with `From ` that is the first line of the stream
/// or follows a blank line (`\n` or `\r\n`). The blank line just before the next `From `
/// line (or at the end of the stream) separates messages and is not part of either. Lines
/// matching `^>+From ` lose one `>` (mboxrd). A `From ` line ending in the
/// [`MBOX_NO_EOL_TOKEN`] marks a message whose final line feed was added by legacyflo's
/// sink; it is removed again.
pub(crate) struct MboxReader<R> {
    reader: R,
    offset: u64,
    pending: Option<(u64, FromLine)>,
    started: bool,
    eof: bool,
    strict_start: bool,
    limits: SpillLimits,
}

impl<R: BufRead> MboxReader<R> {
    /// A parser over `reader`, whose first byte is at `offset` of the file, keeping each
    /// message within `limits`. With `strict_start`, the stream must begin with a `From `
    /// line (or be empty): used when resuming at a position, where anything else means
    /// the file changed.
    pub(crate) fn new(reader: R, offset: u64, strict_start: bool, limits: SpillLimits) -> Self {
        MboxReader {
            reader,
            offset,
            pending: None,
            started: false,
            eof: false,
            strict_start,
            limits,
        }
    }

    /// Reads up to the next line feed (included) or [`PIECE`] bytes into `piece`; the
    /// count (0 at the end) and whether the piece ends its line.
    fn read_piece(&mut self, piece: &mut Vec<u8>) -> io::Result<(usize, bool)> {
        piece.clear();
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok((piece.len(), false));
            }
            let room = PIECE - piece.len();
            let window = &avail[..avail.len().min(room)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                piece.extend_from_slice(&window[..=i]);
                self.reader.consume(i + 1);
                self.offset += (i + 1) as u64;
                return Ok((piece.len(), true));
            }
            let n = window.len();
            piece.extend_from_slice(window);
            self.reader.consume(n);
            self.offset += n as u64;
            if piece.len() >= PIECE {
                return Ok((piece.len(), false));
            }
        }
    }

    /// The `From ` line whose first piece is `first`: the rest of a line longer than a
    /// piece is read and dropped (its length is kept for the report).
    fn read_from_line(&mut self, first: Vec<u8>, complete: bool) -> io::Result<FromLine> {
        if complete || first.len() < PIECE {
            return Ok(FromLine {
                text: first,
                too_long: None,
            });
        }
        let mut len = first.len() as u64;
        let mut rest = Vec::new();
        loop {
            let (n, done) = self.read_piece(&mut rest)?;
            len += n as u64;
            if done || n == 0 {
                break;
            }
        }
        Ok(FromLine {
            text: first,
            too_long: Some(len),
        })
    }

    /// The next message, junk run or bad message; `None` at the end.
    pub(crate) fn next_item(&mut self) -> io::Result<Option<Item>> {
        let (from_offset, from) = match self.pending.take() {
            Some(p) => p,
            None if self.eof => return Ok(None),
            None if !self.started => {
                self.started = true;
                match self.find_first()? {
                    Start::From(off, line) => (off, line),
                    Start::Junk(item) => return Ok(Some(item)),
                    Start::End => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let mut body = Body::new(self.limits);
        let mut last_blank = false;
        let mut at_line_start = true;
        let mut piece = Vec::new();
        loop {
            let at = self.offset;
            let (n, complete) = self.read_piece(&mut piece)?;
            if n == 0 {
                self.eof = true;
                break;
            }
            if !at_line_start {
                // The rest of a long line: never a separator, never quoted.
                body.push(&piece, false)?;
                at_line_start = complete;
                continue;
            }
            if last_blank && piece.starts_with(b"From ") {
                let first = std::mem::take(&mut piece);
                self.pending = Some((at, self.read_from_line(first, complete)?));
                break;
            }
            last_blank = complete && (piece == b"\n" || piece == b"\r\n");
            if piece.first() == Some(&b'>') && is_quoted_from(&piece) {
                body.push(&piece[1..], false)?;
            } else {
                body.push(&piece, last_blank)?;
            }
            at_line_start = complete;
        }
        let end = match &self.pending {
            Some((off, _)) => *off,
            None => self.offset,
        };
        let bad = |reason: String| {
            Ok(Some(Item::Bad {
                offset: from_offset,
                end,
                reason,
            }))
        };
        if let Some(len) = from.too_long {
            return bad(format!(
                "its `From ` line is {len} bytes long, more than the {PIECE} bytes a `From ` line may have (a file with CR-only line ends?); the {} bytes up to the next message are not read",
                end - from_offset
            ));
        }
        if let Some(limit) = body.too_large {
            return bad(format!(
                "the message is larger than the limit of {limit} bytes per message ({} bytes in the file); not read",
                end - from_offset
            ));
        }
        if body.is_empty() && !last_blank {
            return bad(
                "the file ends right after this `From ` line: no message follows it".to_string(),
            );
        }
        let drop_lf = has_no_eol_token(&from.text);
        let body = body.finish(last_blank, drop_lf)?;
        Ok(Some(Item::Message(RawMessage {
            offset: from_offset,
            from_line: from.text,
            body,
            end,
        })))
    }

    fn find_first(&mut self) -> io::Result<Start> {
        let start = self.offset;
        let mut junk = false;
        let mut prev_blank = true;
        let mut at_line_start = true;
        let mut piece = Vec::new();
        loop {
            let at = self.offset;
            let (n, complete) = self.read_piece(&mut piece)?;
            if n == 0 {
                self.eof = true;
                return Ok(if junk {
                    Start::Junk(Item::Junk {
                        offset: start,
                        end: self.offset,
                    })
                } else {
                    Start::End
                });
            }
            if !at_line_start {
                at_line_start = complete;
                continue;
            }
            at_line_start = complete;
            if prev_blank && piece.starts_with(b"From ") {
                let first = std::mem::take(&mut piece);
                let line = self.read_from_line(first, complete)?;
                if junk {
                    self.pending = Some((at, line));
                    return Ok(Start::Junk(Item::Junk {
                        offset: start,
                        end: at,
                    }));
                }
                return Ok(Start::From(at, line));
            }
            if self.strict_start {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "no `From ` line at offset {at}; the file changed since the checkpoint"
                    ),
                ));
            }
            let blank = complete && piece.iter().all(u8::is_ascii_whitespace);
            junk |= !blank;
            prev_blank = blank;
        }
    }
}

enum Start {
    From(u64, FromLine),
    Junk(Item),
    End,
}

/// Whether `line` matches `^>+From `.
fn is_quoted_from(line: &[u8]) -> bool {
    let rest = line.iter().position(|&b| b != b'>').map(|i| &line[i..]);
    matches!(rest, Some(r) if r.starts_with(b"From ")) && line.first() == Some(&b'>')
}

fn has_no_eol_token(from_line: &[u8]) -> bool {
    from_line
        .trim_ascii_end()
        .rsplit(|b| *b == b' ')
        .next()
        .is_some_and(|t| t == MBOX_NO_EOL_TOKEN.as_bytes())
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The date of a `From ` line: `From sender Www Mmm dd hh:mm[:ss] [zone] yyyy [zone]`
/// (asctime, UTC unless a numeric zone such as `+0100` is given). `None` when absent.
pub(crate) fn from_line_date(line: &[u8]) -> Option<DateTime<Utc>> {
    let text = String::from_utf8_lossy(line);
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    let month_at = (2..tokens.len()).find(|&i| {
        month_index(tokens[i]).is_some()
            && tokens.get(i + 1).is_some_and(|d| d.parse::<u32>().is_ok())
            && tokens.get(i + 2).is_some_and(|t| t.contains(':'))
            && WEEKDAYS.contains(&tokens[i - 1].to_ascii_lowercase().as_str())
    })?;
    let month = month_index(tokens[month_at])? + 1;
    let day: u32 = tokens.get(month_at + 1)?.parse().ok()?;
    let mut hms = tokens.get(month_at + 2)?.split(':');
    let hour: u32 = hms.next()?.parse().ok()?;
    let minute: u32 = hms.next()?.parse().ok()?;
    let second: u32 = hms.next().map_or(Some(0), |s| s.parse().ok())?;
    let mut year = None;
    let mut zone_minutes = 0i64;
    for t in tokens.iter().skip(month_at + 3).take(3) {
        if let Some(minutes) = numeric_zone(t) {
            zone_minutes = minutes;
        } else if t.len() >= 4 && t.bytes().all(|b| b.is_ascii_digit()) && year.is_none() {
            year = t.parse::<i32>().ok();
        }
    }
    let naive =
        NaiveDate::from_ymd_opt(year?, month, day)?.and_hms_opt(hour, minute, second.min(59))?;
    let utc = Utc.from_utc_datetime(&naive);
    Some(utc - chrono::Duration::minutes(zone_minutes))
}

fn month_index(token: &str) -> Option<u32> {
    let lower = token.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == lower).map(|i| i as u32)
}

fn numeric_zone(token: &str) -> Option<i64> {
    let (sign, digits) = match token.as_bytes().first()? {
        b'+' => (1, &token[1..]),
        b'-' => (-1, &token[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(sign * ((v / 100) * 60 + v % 100))
}

/// Flags from the `Status:`, `X-Status:` and `X-Mozilla-Status:` headers, read without
/// changing the bytes: `R` → Seen, `A` → Answered, `F` → Flagged, `T` → Draft,
/// `D` → Deleted (`O` and other letters are ignored); Mozilla's bits 0x1 read, 0x2 replied,
/// 0x4 marked, 0x8 expunged. Sorted, without duplicates.
pub(crate) fn header_flags(message: &[u8]) -> Vec<Flag> {
    let mut flags = Vec::new();
    for line in message.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].to_ascii_lowercase();
        let value = String::from_utf8_lossy(&line[colon + 1..]);
        let value = value.trim();
        match name.as_slice() {
            b"status" | b"x-status" => {
                for c in value.chars() {
                    match c {
                        'R' => flags.push(Flag::Seen),
                        'A' => flags.push(Flag::Answered),
                        'F' => flags.push(Flag::Flagged),
                        'T' => flags.push(Flag::Draft),
                        'D' => flags.push(Flag::Deleted),
                        _ => {}
                    }
                }
            }
            b"x-mozilla-status" => {
                if let Ok(bits) = u32::from_str_radix(value, 16) {
                    for (bit, flag) in [
                        (0x1, Flag::Seen),
                        (0x2, Flag::Answered),
                        (0x4, Flag::Flagged),
                        (0x8, Flag::Deleted),
                    ] {
                        if bits & bit != 0 {
                            flags.push(flag);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    flags.sort();
    flags.dedup();
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8]) -> Vec<Item> {
        let mut r = MboxReader::new(data, 0, false, SpillLimits::default());
        let mut out = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            out.push(item);
        }
        out
    }

    fn bodies(data: &[u8]) -> Vec<Vec<u8>> {
        parse(data)
            .into_iter()
            .map(|i| match i {
                Item::Message(m) => m.body.to_vec(),
                Item::Junk { .. } => b"<junk>".to_vec(),
                Item::Bad { .. } => b"<bad>".to_vec(),
            })
            .collect()
    }

    #[test]
    fn splits_on_from_after_blank_line_only() {
        let data = b"From a Thu Nov 21 10:00:00 2024\nSubject: 1\n\nbody\nFrom me, not a separator\n\nFrom b Thu Nov 21 10:00:01 2024\nSubject: 2\n\nx\n\n";
        let b = bodies(data);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], b"Subject: 1\n\nbody\nFrom me, not a separator\n");
        assert_eq!(b[1], b"Subject: 2\n\nx\n");
    }

    #[test]
    fn mboxrd_unquoting_removes_one_gt() {
        let data = b"From a Thu Nov 21 10:00:00 2024\n\n>From x\n>>From y\n> From z\n>Fromage\n\n";
        let b = bodies(data);
        assert_eq!(b, vec![b"\nFrom x\n>From y\n> From z\n>Fromage\n".to_vec()]);
    }

    #[test]
    fn mboxo_unquoted_from_in_body_without_blank_line_stays() {
        let data = b"From a Thu Nov 21 10:00:00 2024\nA: b\n\nline\nFrom here on\n";
        assert_eq!(bodies(data), vec![b"A: b\n\nline\nFrom here on\n".to_vec()]);
    }

    #[test]
    fn no_trailing_newline_and_no_final_blank_line() {
        let data = b"From a Thu Nov 21 10:00:00 2024\nA: b\n\nend";
        assert_eq!(bodies(data), vec![b"A: b\n\nend".to_vec()]);
    }

    #[test]
    fn no_eol_token_removes_the_added_line_feed() {
        let data = b"From a Thu Nov 21 10:00:00 2024 legacyflo-no-eol\nA: b\n\nend\n\nFrom b Thu Nov 21 10:00:00 2024\n\n";
        assert_eq!(bodies(data), vec![b"A: b\n\nend".to_vec(), b"".to_vec()]);
    }

    #[test]
    fn crlf_messages() {
        let data = b"From a Thu Nov 21 10:00:00 2024\r\nA: b\r\n\r\nx\r\n\r\nFrom b Thu Nov 21 10:00:00 2024\r\nC: d\r\n\r\n";
        assert_eq!(
            bodies(data),
            vec![b"A: b\r\n\r\nx\r\n".to_vec(), b"C: d\r\n".to_vec()]
        );
    }

    #[test]
    fn empty_messages_and_offsets() {
        let data = b"From a Thu Nov 21 10:00:00 2024\n\nFrom b Thu Nov 21 10:00:00 2024\n\n";
        let items = parse(data);
        assert_eq!(items.len(), 2);
        let Item::Message(m) = &items[1] else {
            panic!("not a message")
        };
        assert_eq!(m.offset, 33);
        assert!(m.body.is_empty());
        assert_eq!(m.end, data.len() as u64);
        let Item::Message(m0) = &items[0] else {
            panic!("not a message")
        };
        assert_eq!(m0.end, 33);
    }

    #[test]
    fn leading_junk_is_reported_and_blank_lines_are_not() {
        let data = b"garbage\n\nFrom a Thu Nov 21 10:00:00 2024\nA: b\n";
        let items = parse(data);
        assert_eq!(items[0], Item::Junk { offset: 0, end: 9 });
        assert_eq!(items.len(), 2);
        let data = b"\n\nFrom a Thu Nov 21 10:00:00 2024\nA: b\n";
        assert_eq!(parse(data).len(), 1);
        assert!(parse(b"").is_empty());
    }

    #[test]
    fn an_overlong_from_line_is_reported_not_turned_into_an_empty_message() {
        // A 200 KB `From ` line (a CR-only file looks like this), then a good message.
        let mut data = b"From a Thu Nov 21 10:00:00 2024".to_vec();
        data.extend(std::iter::repeat_n(b'x', 200_000));
        data.extend_from_slice(b"\nA: b\n\nbody\n\nFrom b Thu Nov 21 10:00:00 2024\nC: d\n");
        let items = parse(&data);
        assert_eq!(items.len(), 2, "{items:?}");
        let Item::Bad {
            offset,
            end,
            reason,
        } = &items[0]
        else {
            panic!("{:?}", items[0])
        };
        assert_eq!(*offset, 0);
        assert_eq!(
            *end as usize,
            data.len() - b"From b Thu Nov 21 10:00:00 2024\nC: d\n".len()
        );
        assert!(reason.contains("200032 bytes long"), "{reason}");
        let Item::Message(m) = &items[1] else {
            panic!("{:?}", items[1])
        };
        assert_eq!(&m.body[..], b"C: d\n");
        // A CR-only file is one endless line: reported whole.
        let cr = b"From a Thu Nov 21 10:00:00 2024\rA: b\r\rbody\r".repeat(5000);
        let items = parse(&cr);
        assert!(
            matches!(&items[..], [Item::Bad { end, .. }] if *end as usize == cr.len()),
            "{:?}",
            items.len()
        );
    }

    #[test]
    fn a_from_line_at_the_end_of_the_file_is_reported() {
        for data in [
            &b"From a Thu Nov 21 10:00:00 2024\n"[..],
            b"From a Thu Nov 21 10:00:00 2024",
        ] {
            let items = parse(data);
            assert!(
                matches!(&items[..], [Item::Bad { reason, .. }] if reason.contains("no message follows")),
                "{items:?}"
            );
        }
    }

    #[test]
    fn long_lines_and_large_messages_stay_bounded_and_exact() {
        let limits = SpillLimits {
            max_bytes: 300_000,
            memory_threshold: 10_000,
        };
        // A body line of 150 KB holding `From ` that is no separator, and a quoted
        // `>From ` line of 100 KB: read in pieces, spilled, un-quoted once, byte for byte.
        let long = "y From x ".repeat(150_000 / 9);
        let quoted = format!(">From {}", "z".repeat(100_000));
        let body = format!("A: b\n\n{long}\n{quoted}\nend\n");
        let mut data = b"From a Thu Nov 21 10:00:00 2024\n".to_vec();
        data.extend_from_slice(body.as_bytes());
        data.extend_from_slice(b"\n");
        let big = vec![b'q'; 400_000];
        data.extend_from_slice(b"From b Thu Nov 21 10:00:00 2024\n");
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\n\nFrom c Thu Nov 21 10:00:00 2024\nlast\n");
        let mut r = MboxReader::new(&data[..], 0, false, limits);
        let Some(Item::Message(m)) = r.next_item().unwrap() else {
            panic!("first")
        };
        assert_eq!(m.body.len(), body.len() - 1);
        assert_eq!(&m.body[..], body.replacen(">From", "From", 1).as_bytes());
        let second = r.next_item().unwrap();
        assert!(
            matches!(&second, Some(Item::Bad { reason, .. }) if reason.contains("limit of 300000 bytes")),
            "{second:?}"
        );
        let Some(Item::Message(m)) = r.next_item().unwrap() else {
            panic!("third")
        };
        assert_eq!(&m.body[..], b"last\n");
        assert!(r.next_item().unwrap().is_none());
    }

    #[test]
    fn strict_start_rejects_a_moved_position() {
        let mut r = MboxReader::new(&b"A: b\n"[..], 10, true, SpillLimits::default());
        assert!(r.next_item().is_err());
    }

    #[test]
    fn dates() {
        let d = from_line_date(b"From a@b Thu Nov 21 10:00:00 2024\n").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-11-21T10:00:00+00:00");
        let d = from_line_date(b"From MAILER-DAEMON Fri Nov  1 09:05:07 2024 legacyflo-no-eol\n")
            .unwrap();
        assert_eq!(d.to_rfc3339(), "2024-11-01T09:05:07+00:00");
        let d = from_line_date(b"From 1234@xxx Thu Nov 21 10:00:00 +0100 2024\r\n").unwrap();
        assert_eq!(d.to_rfc3339(), "2024-11-21T09:00:00+00:00");
        assert!(from_line_date(b"From \n").is_none());
        assert!(from_line_date(b"From x y z\n").is_none());
    }

    #[test]
    fn status_flags() {
        let m = b"Subject: x\r\nStatus: RO\r\nX-Status: AFT\r\n\r\nStatus: D\r\n";
        assert_eq!(
            header_flags(m),
            vec![Flag::Seen, Flag::Answered, Flag::Flagged, Flag::Draft]
        );
        assert_eq!(
            header_flags(b"X-Mozilla-Status: 0005\n\n"),
            vec![Flag::Seen, Flag::Flagged]
        );
        assert!(header_flags(b"Subject: x\n\n").is_empty());
    }
}
