//! [`Framer`]: cuts the bytes a server sends into complete responses, within bounds.
//!
//! Pure (no I/O): bytes go in with [`Framer::feed`] (or straight into its buffer on the
//! client's read path), complete [`Frame`]s come out of [`Framer::next_frame`]. A response
//! is a line, or a line ending in a literal announcement `{n}` followed by `n` bytes and
//! the rest of the response, possibly with more literals.
//!
//! Bounds, whatever the server sends ([`FrameLimits`]):
//! - the text of one response (its lines without literal data) is at most
//!   [`FrameLimits::max_line`] bytes; a longer one (a line that never ends) is an error,
//!   found once the limit is passed, without rescanning: every byte is looked at once;
//! - a `* SEARCH` line longer than that is not kept as text: its UIDs are parsed as they
//!   arrive (at most [`MAX_SEARCH_UIDS`]);
//! - literals are never reserved from their announced size. The literals of one response
//!   stay in memory while they add up to at most the spill threshold
//!   ([`SpillLimits::memory_threshold`]); a larger one goes to a temporary file
//!   ([`SpillBuffer`]) and its place in the text is taken by an empty literal, found again
//!   by [`RawResponse::spilled`];
//! - a response whose literals add up to more than [`SpillLimits::max_bytes`] (the
//!   per-message limit) is reported at once as [`Frame::Oversized`] with its text so far
//!   (`* 5 FETCH (UID 9 BODY[] {99999999999}`), and then read and dropped in bounded
//!   chunks: the connection stays usable.

use std::path::PathBuf;

use bytes::{Buf, Bytes, BytesMut};
use legacyflo_core::spill::{SpillBuffer, SpillError, SpillLimits};

/// The most UIDs one `* SEARCH` response may carry (64 MiB of UIDs).
pub const MAX_SEARCH_UIDS: usize = 16 << 20;

/// A `* SEARCH` line longer than this is parsed as it arrives instead of being kept.
const SEARCH_STREAM_AFTER: usize = 64 << 10;

/// What the framer accepts from a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// The longest response text accepted, in bytes: all lines of one response, literal
    /// data excluded. Default [`FrameLimits::DEFAULT_MAX_LINE`] (1 MiB), far above what
    /// servers send (long `* SEARCH` lines are streamed and do not count).
    pub max_line: usize,
    /// Literals: the largest response accepted (`max_bytes`: the per-message limit,
    /// default 2 GiB) and how much of one response is kept in memory before a literal goes
    /// to a temporary file (`memory_threshold`, default 32 MiB).
    pub literal: SpillLimits,
    /// Where those temporary files go; the system's temporary directory when `None`.
    pub spill_dir: Option<PathBuf>,
}

impl FrameLimits {
    /// The default [`max_line`](Self::max_line): 1 MiB.
    pub const DEFAULT_MAX_LINE: usize = 1 << 20;
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_line: Self::DEFAULT_MAX_LINE,
            literal: SpillLimits::default(),
            spill_dir: None,
        }
    }
}

/// Why the input cannot be framed. The connection cannot be used after any of these.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A response's text is longer than [`FrameLimits::max_line`].
    #[error("the server sent a response line longer than the limit of {limit} bytes (no line end)")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A literal announcement that is not a number we can hold (`{99999999999999999999999}`).
    #[error("the server announced a literal of `{0}` bytes, which is not a valid size")]
    BadLiteral(String),
    /// A `* SEARCH` answer with more than [`MAX_SEARCH_UIDS`] UIDs, or something else than
    /// numbers in it.
    #[error("malformed or oversized SEARCH answer: {0}")]
    BadSearch(String),
    /// A large literal could not be written to its temporary file.
    #[error(transparent)]
    Spill(SpillError),
}

/// One complete response.
#[derive(Debug)]
pub enum Frame {
    /// A response as text, its small literals inline, large ones held apart.
    Response(RawResponse),
    /// A long `* SEARCH` answer, parsed as it arrived.
    Search(Vec<u32>),
    /// A response announced literals over [`SpillLimits::max_bytes`]; they and the rest of
    /// that response are dropped as they arrive.
    Oversized {
        /// The response's text up to and including the announcement.
        prefix: Bytes,
        /// The size announced (of all its literals so far).
        announced: u64,
        /// The limit it is over.
        limit: u64,
    },
}

/// A response's text, with large literals replaced by empty ones (`{0}`).
#[derive(Debug)]
pub struct RawResponse {
    /// The text; literals up to the memory threshold are inline, as sent.
    pub text: Bytes,
    /// The large literals: each with the offset in `text` just after the `{0}\r\n` that
    /// stands for it, and its bytes (memory-mapped from a temporary file).
    pub spilled: Vec<(usize, Bytes)>,
}

/// Where the framer is inside the current response.
#[derive(Debug)]
enum State {
    /// Looking for the end of a line.
    Line,
    /// An inline literal ends at this offset of the buffer.
    Inline { end: usize },
    /// A large literal going to a temporary file.
    Spill { buf: SpillBuffer, remaining: u64 },
    /// A literal being dropped.
    Discard { remaining: u64 },
    /// A long `* SEARCH` line: UIDs so far and the digits of the one being read.
    Search {
        uids: Vec<u32>,
        current: Option<u64>,
    },
}

/// Cuts a byte stream into [`Frame`]s; see the [module docs](self).
#[derive(Debug)]
pub struct Framer {
    limits: FrameLimits,
    /// The current response from its first byte, then input not looked at yet.
    buf: BytesMut,
    /// End of the part of the current response already taken (text and inline literals).
    pos: usize,
    /// How far the search for the end of the current line has gone.
    scanned: usize,
    /// Text bytes of the current response (for `max_line`).
    text: usize,
    /// Inline literal bytes of the current response.
    inline: usize,
    /// All literal bytes announced by the current response.
    literals: u64,
    /// The current response is being dropped (it announced too much).
    dropping: bool,
    spilled: Vec<(usize, Bytes)>,
    state: State,
    /// Bytes looked at while searching for line ends (each once; tests check it).
    examined: u64,
}

impl Framer {
    /// An empty framer.
    pub fn new(limits: FrameLimits) -> Framer {
        Framer {
            limits,
            buf: BytesMut::with_capacity(64 << 10),
            pos: 0,
            scanned: 0,
            text: 0,
            inline: 0,
            literals: 0,
            dropping: false,
            spilled: Vec::new(),
            state: State::Line,
            examined: 0,
        }
    }

    /// The limits in use.
    pub fn limits(&self) -> &FrameLimits {
        &self.limits
    }

    /// Appends input.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, for reading straight into it: append only.
    pub(crate) fn input(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether input is waiting that no frame took yet (for tests and diagnostics).
    pub fn has_pending_input(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes examined for line ends so far: each input byte at most once.
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// The next complete frame, `Ok(None)` when more input is needed. After an `Err` the
    /// framer must not be used again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match &mut self.state {
                State::Line => match self.line()? {
                    Step::Frame(f) => return Ok(Some(f)),
                    Step::More => return Ok(None),
                    Step::Again => {}
                },
                State::Inline { end } => {
                    let end = *end;
                    if self.buf.len() < end {
                        return Ok(None);
                    }
                    self.inline += end - self.pos;
                    self.pos = end;
                    self.scanned = end;
                    self.state = State::Line;
                }
                State::Spill { buf, remaining } => {
                    let avail = self.buf.len() - self.pos;
                    let take = usize::try_from(*remaining).map_or(avail, |r| r.min(avail));
                    buf.push(&self.buf[self.pos..self.pos + take])
                        .map_err(FrameError::Spill)?;
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    self.cut(take);
                    if !done {
                        return Ok(None);
                    }
                    let State::Spill { buf, .. } = std::mem::replace(&mut self.state, State::Line)
                    else {
                        return Ok(None);
                    };
                    let bytes = buf.finish().map_err(FrameError::Spill)?;
                    self.spilled.push((self.pos, bytes));
                }
                State::Discard { remaining } => {
                    let avail = self.buf.len() - self.pos;
                    let take = usize::try_from(*remaining).map_or(avail, |r| r.min(avail));
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    self.cut(take);
                    if !done {
                        return Ok(None);
                    }
                    self.state = State::Line;
                }
                State::Search { uids, current } => {
                    let mut i = self.pos;
                    let mut end = None;
                    while i < self.buf.len() {
                        let b = self.buf[i];
                        i += 1;
                        match b {
                            b'0'..=b'9' => {
                                let c = current.unwrap_or(0) * 10 + u64::from(b - b'0');
                                if c > u64::from(u32::MAX) {
                                    return Err(FrameError::BadSearch("a UID over 2^32".into()));
                                }
                                *current = Some(c);
                            }
                            b' ' | b'\r' | b'\n' => {
                                if let Some(c) = current.take() {
                                    if uids.len() >= MAX_SEARCH_UIDS {
                                        return Err(FrameError::BadSearch(format!(
                                            "more than {MAX_SEARCH_UIDS} UIDs"
                                        )));
                                    }
                                    uids.push(c as u32);
                                }
                                if b == b'\n' {
                                    end = Some(i);
                                    break;
                                }
                            }
                            other => {
                                return Err(FrameError::BadSearch(format!(
                                    "unexpected byte 0x{other:02x}"
                                )));
                            }
                        }
                    }
                    self.examined += (i - self.pos) as u64;
                    match end {
                        None => {
                            self.buf.truncate(self.pos);
                            return Ok(None);
                        }
                        Some(end) => {
                            let State::Search { uids, .. } =
                                std::mem::replace(&mut self.state, State::Line)
                            else {
                                return Ok(None);
                            };
                            self.buf.advance(end);
                            self.reset();
                            return Ok(Some(Frame::Search(uids)));
                        }
                    }
                }
            }
        }
    }

    /// Removes `n` input bytes at `pos` (literal data taken out of the buffer).
    fn cut(&mut self, n: usize) {
        if self.pos + n == self.buf.len() {
            self.buf.truncate(self.pos);
        } else {
            let rest = self.buf.split_off(self.pos + n);
            self.buf.truncate(self.pos);
            self.buf.unsplit(rest);
        }
        self.scanned = self.pos;
    }

    /// Forgets the current response (its bytes are already gone from the buffer).
    fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.text = 0;
        self.inline = 0;
        self.literals = 0;
        self.dropping = false;
        self.spilled.clear();
    }

    fn line(&mut self) -> Result<Step, FrameError> {
        let from = self.scanned.max(self.pos);
        let found = memchr(b'\n', &self.buf[from..]).map(|i| from + i);
        let line_end = found.map_or(self.buf.len(), |nl| nl + 1);
        self.examined += (line_end - from) as u64;
        self.scanned = line_end;
        let line_len = line_end - self.pos;
        if self.pos == 0
            && line_len > SEARCH_STREAM_AFTER.min(self.limits.max_line)
            && self.buf.len() >= 9
            && self.buf[..9].eq_ignore_ascii_case(b"* SEARCH ")
        {
            self.pos = 9;
            self.state = State::Search {
                uids: Vec::new(),
                current: None,
            };
            return Ok(Step::Again);
        }
        if self.text + line_len > self.limits.max_line {
            return Err(FrameError::LineTooLong {
                limit: self.limits.max_line,
            });
        }
        let Some(nl) = found else {
            return Ok(Step::More);
        };
        self.text += line_len;
        let line = &self.buf[self.pos..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some((brace, n)) = literal_at_end(line)? else {
            let frame = self.buf.split_to(nl + 1).freeze();
            let spilled = std::mem::take(&mut self.spilled);
            let dropped = self.dropping;
            self.reset();
            if dropped {
                return Ok(Step::Again);
            }
            return Ok(Step::Frame(Frame::Response(RawResponse {
                text: frame,
                spilled,
            })));
        };
        let brace = self.pos + brace;
        self.pos = nl + 1;
        self.scanned = self.pos;
        self.literals = self.literals.saturating_add(n);
        if self.dropping {
            self.state = State::Discard { remaining: n };
            return Ok(Step::Again);
        }
        if self.literals > self.limits.literal.max_bytes {
            let prefix = Bytes::copy_from_slice(&self.buf[..self.pos]);
            self.dropping = true;
            self.state = State::Discard { remaining: n };
            return Ok(Step::Frame(Frame::Oversized {
                prefix,
                announced: self.literals,
                limit: self.limits.literal.max_bytes,
            }));
        }
        let fits =
            (self.inline as u64).saturating_add(n) <= self.limits.literal.memory_threshold as u64;
        if fits {
            // `n` fits in memory: the bytes arrive in the buffer as they are read.
            self.state = State::Inline {
                end: self.pos + n as usize,
            };
            return Ok(Step::Again);
        }
        // Too large to keep in memory: an empty literal takes its place in the text.
        let rest = self.buf.split_off(self.pos);
        self.buf.truncate(brace);
        self.buf.extend_from_slice(b"{0}\r\n");
        self.pos = self.buf.len();
        self.scanned = self.pos;
        self.buf.unsplit(rest);
        let limits = SpillLimits {
            max_bytes: n,
            memory_threshold: 0,
        };
        let buf = SpillBuffer::with_expected(limits, self.limits.spill_dir.as_deref(), n)
            .map_err(FrameError::Spill)?;
        self.state = State::Spill { buf, remaining: n };
        Ok(Step::Again)
    }
}

enum Step {
    Frame(Frame),
    More,
    Again,
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The offset of `{` and the size of a line ending in a literal announcement `{n}` or
/// `{n+}`; an announcement whose digits do not make a `u64` is an error.
pub fn literal_at_end(line: &[u8]) -> Result<Option<(usize, u64)>, FrameError> {
    let Some(inner_end) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = inner_end.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let inner = &inner_end[open + 1..];
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(digits);
    match text.parse::<u64>() {
        Ok(n) => Ok(Some((open, n))),
        Err(_) => Err(FrameError::BadLiteral(text.into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_line: usize, max_bytes: u64, threshold: usize) -> FrameLimits {
        FrameLimits {
            max_line,
            literal: SpillLimits {
                max_bytes,
                memory_threshold: threshold,
            },
            spill_dir: None,
        }
    }

    fn text(f: Frame) -> Vec<u8> {
        match f {
            Frame::Response(r) => r.text.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_and_inline_literals_in_any_chunking() {
        let input = b"* OK hi\r\n* 1 FETCH (UID 4 BODY[] {5}\r\nhe\nlo)\r\nA1 OK done\r\n";
        for chunk in [1, 2, 3, 7, input.len()] {
            let mut f = Framer::new(FrameLimits::default());
            let mut frames = Vec::new();
            for c in input.chunks(chunk) {
                f.feed(c);
                while let Some(fr) = f.next_frame().unwrap() {
                    frames.push(text(fr));
                }
            }
            assert_eq!(
                frames,
                vec![
                    b"* OK hi\r\n".to_vec(),
                    b"* 1 FETCH (UID 4 BODY[] {5}\r\nhe\nlo)\r\n".to_vec(),
                    b"A1 OK done\r\n".to_vec()
                ],
                "chunk {chunk}"
            );
            assert!(!f.has_pending_input());
        }
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap_and_scanned_once() {
        let mut f = Framer::new(limits(1000, 1 << 20, 1 << 10));
        let mut fed = 0u64;
        let err = loop {
            f.feed(b"xxxxxxxxx ");
            fed += 10;
            match f.next_frame() {
                Ok(None) => {}
                Ok(Some(fr)) => panic!("{fr:?}"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, FrameError::LineTooLong { limit: 1000 }),
            "{err}"
        );
        assert!(fed <= 1010);
        assert!(f.examined() <= fed, "{} > {fed}", f.examined());
    }

    #[test]
    fn the_line_scan_resumes_where_it_stopped() {
        let mut f = Framer::new(limits(1 << 20, 1 << 20, 1 << 10));
        for _ in 0..10_000 {
            f.feed(b"0123456789");
            assert!(f.next_frame().unwrap().is_none());
        }
        f.feed(b"\r\n");
        assert!(f.next_frame().unwrap().is_some());
        assert_eq!(f.examined(), 100_002);
    }

    #[test]
    fn an_announced_size_reserves_nothing_and_over_the_cap_is_dropped() {
        let mut f = Framer::new(limits(1 << 10, 1 << 20, 1 << 10));
        f.feed(b"* 1 FETCH (UID 9 BODY[] {99999999999}\r\nabc");
        match f.next_frame().unwrap() {
            Some(Frame::Oversized {
                prefix,
                announced,
                limit,
            }) => {
                assert_eq!(&prefix[..], b"* 1 FETCH (UID 9 BODY[] {99999999999}\r\n");
                assert_eq!(announced, 99_999_999_999);
                assert_eq!(limit, 1 << 20);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.input().capacity() < 1 << 20);
        // Dropped as it arrives: the buffer stays small.
        for _ in 0..100 {
            f.feed(&[b'z'; 4096]);
            assert!(f.next_frame().unwrap().is_none());
            assert!(f.input().len() < 64);
        }
    }

    #[test]
    fn after_a_dropped_literal_the_stream_goes_on() {
        let mut f = Framer::new(limits(1 << 10, 8, 4));
        f.feed(b"* 1 FETCH (UID 9 BODY[] {10}\r\n0123456789 FLAGS ())\r\nA1 OK x\r\n");
        assert!(matches!(
            f.next_frame().unwrap(),
            Some(Frame::Oversized { .. })
        ));
        assert_eq!(text(f.next_frame().unwrap().unwrap()), b"A1 OK x\r\n");
    }

    #[test]
    fn large_literals_spill_and_leave_an_empty_literal_in_the_text() {
        let mut f = Framer::new(limits(1 << 10, 1 << 20, 4));
        f.feed(b"* 1 FETCH (UID 9 BODY[] {10}\r\n01234");
        assert!(f.next_frame().unwrap().is_none());
        f.feed(b"56789 FLAGS (\\Seen))\r\n");
        match f.next_frame().unwrap() {
            Some(Frame::Response(r)) => {
                assert_eq!(
                    &r.text[..],
                    b"* 1 FETCH (UID 9 BODY[] {0}\r\n FLAGS (\\Seen))\r\n"
                );
                assert_eq!(r.spilled.len(), 1);
                assert_eq!(r.spilled[0].0, b"* 1 FETCH (UID 9 BODY[] {0}\r\n".len());
                assert_eq!(&r.spilled[0].1[..], b"0123456789");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_search_lines_are_streamed() {
        let mut f = Framer::new(limits(1 << 10, 1 << 20, 1 << 10));
        let mut line = b"* SEARCH".to_vec();
        for u in 1..=100_000u32 {
            line.extend_from_slice(format!(" {u}").as_bytes());
        }
        line.extend_from_slice(b"\r\nA1 OK done\r\n");
        let mut got = None;
        for c in line.chunks(4096) {
            f.feed(c);
            if let Some(fr) = f.next_frame().unwrap() {
                got = Some(fr);
            }
        }
        match got {
            Some(Frame::Search(uids)) => assert_eq!(uids, (1..=100_000).collect::<Vec<_>>()),
            other => panic!("{other:?}"),
        }
        assert_eq!(text(f.next_frame().unwrap().unwrap()), b"A1 OK done\r\n");
    }

    #[test]
    fn literal_sizes_that_are_not_numbers() {
        assert_eq!(
            literal_at_end(b"* 1 FETCH (BODY[] {12}").unwrap(),
            Some((18, 12))
        );
        assert_eq!(literal_at_end(b"A APPEND x {3+}").unwrap(), Some((11, 3)));
        assert_eq!(literal_at_end(b"* OK {x}").unwrap(), None);
        assert!(literal_at_end(b"* 1 FETCH (BODY[] {99999999999999999999999}").is_err());
    }
}
