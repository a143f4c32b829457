//! Lazily generated benchmark corpora with a realistic size mix.

use crate::GenMessage;
use crate::blocks::{
    END_2024, START_2019, date_header, message_id, pdf_like, png_like, received, subject_value,
};
use crate::encode::Charset;
use crate::mime::{Header, Part, h, mailbox, message};
use crate::rng::Rng;
use crate::text::{Lang, OWNER, PEOPLE, ascii_filler, sentence, subjects};

/// What [`bench_corpus`] generates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Seed; the same spec always yields the same messages.
    pub seed: u64,
    /// Number of messages (including the `big_attachments` ones). Ignored when
    /// `total_bytes` is set.
    pub messages: usize,
    /// When set, messages are generated until their raw sizes add up to at least this many
    /// bytes (and all `big_attachments` messages were produced).
    pub total_bytes: Option<u64>,
    /// Number of ~10 MB messages (one ~10 MB base64 attachment each), spread evenly
    /// through the corpus.
    pub big_attachments: usize,
    /// Number of folders (at least 1): INBOX, Sent, then nested and non-ASCII ones.
    pub folders: usize,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            seed: 1,
            messages: 1000,
            total_bytes: None,
            big_attachments: 0,
            folders: 10,
        }
    }
}

/// Size classes of the realistic mix, as (per-mille share, min bytes, max bytes).
/// 70% 1-8 KiB, 27% 8-100 KiB, 3% 100 KiB-1 MiB; within a class sizes are skewed
/// towards the lower end (mean at one third of the range).
pub const SIZE_MIX: [(u64, u64, u64); 3] = [
    (700, 1024, 8 * 1024),
    (270, 8 * 1024, 100 * 1024),
    (30, 100 * 1024, 1024 * 1024),
];

/// Approximate size of a "big attachment" message (10 MiB +- 256 KiB).
pub const BIG_MESSAGE_SIZE: u64 = 10 * 1024 * 1024;

/// Folder path of bench folder number `i` (0 = INBOX, 1 = Sent, then a mix of nested,
/// numbered and non-ASCII names).
pub fn bench_folder(i: usize) -> Vec<String> {
    match i {
        0 => vec!["INBOX".to_owned()],
        1 => vec!["Sent".to_owned()],
        _ => match i % 4 {
            0 => vec!["Projekte".to_owned(), format!("Projekt {i:03}")],
            1 => vec![
                "Archiv".to_owned(),
                format!("{}", 2019 + i % 6),
                format!("Teil {i:03}"),
            ],
            2 => vec![format!("Kunde {i:03}")],
            _ => vec!["Ünïcødé".to_owned(), format!("Ordner {i:03} & Co")],
        },
    }
}

/// A lazy iterator over the messages of `spec`; nothing is kept in memory between
/// messages except a few Message-IDs for threading, so corpora of many GB are fine.
///
/// Messages come in generation order (folders interleaved). Bodies are mostly ASCII
/// text (7bit/8bit UTF-8); messages over 24 KiB are multipart/mixed with a base64
/// attachment (PDF-, PNG-like or random binary). Each message's size is exact to its
/// drawn target, so the size mix in [`SIZE_MIX`] holds per message.
pub fn bench_corpus(spec: &CorpusSpec) -> impl Iterator<Item = GenMessage> + use<> {
    BenchIter {
        spec: spec.clone(),
        index: 0,
        bytes: 0,
        bigs: 0,
        recent: Vec::new(),
    }
}

struct BenchIter {
    spec: CorpusSpec,
    index: u64,
    bytes: u64,
    bigs: usize,
    recent: Vec<(String, String)>,
}

impl BenchIter {
    fn big_due(&self) -> bool {
        let big = self.spec.big_attachments;
        if self.bigs >= big {
            return false;
        }
        let k = self.bigs as u64 + 1;
        match self.spec.total_bytes {
            Some(total) => self.bytes >= k * total / (big as u64 + 1),
            None => {
                let n = self.spec.messages as u64;
                self.index >= k * n / (big as u64 + 1)
            }
        }
    }

    fn done(&self) -> bool {
        match self.spec.total_bytes {
            Some(total) => self.bytes >= total && self.bigs >= self.spec.big_attachments,
            None => self.index >= self.spec.messages as u64,
        }
    }
}

impl Iterator for BenchIter {
    type Item = GenMessage;

    fn next(&mut self) -> Option<GenMessage> {
        if self.done() {
            return None;
        }
        let mut rng = Rng::new(mix(self.spec.seed, self.index));
        let target = if self.big_due() {
            self.bigs += 1;
            rng.range(BIG_MESSAGE_SIZE - 256 * 1024, BIG_MESSAGE_SIZE + 256 * 1024)
        } else {
            let r = rng.below(1000);
            let mut acc = 0;
            let mut chosen = SIZE_MIX[0];
            for class in SIZE_MIX {
                acc += class.0;
                if r < acc {
                    chosen = class;
                    break;
                }
            }
            rng.skewed(chosen.1, chosen.2)
        };
        let msg = bench_message(
            &mut rng,
            &self.spec,
            self.index,
            target as usize,
            &mut self.recent,
        );
        self.index += 1;
        self.bytes += msg.raw.len() as u64;
        Some(msg)
    }
}

/// Per-message seed: SplitMix64 finalizer over (seed, index).
fn mix(seed: u64, index: u64) -> u64 {
    let mut r = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

fn bench_message(
    rng: &mut Rng,
    spec: &CorpusSpec,
    index: u64,
    target: usize,
    recent: &mut Vec<(String, String)>,
) -> GenMessage {
    let nfolders = spec.folders.max(1);
    let folder_idx = if nfolders == 1 {
        0
    } else {
        match rng.below(100) {
            0..=39 => 0,
            40..=54 => 1,
            _ => {
                if nfolders > 2 {
                    2 + rng.index(nfolders - 2)
                } else {
                    1
                }
            }
        }
    };
    let outgoing = folder_idx == 1;
    let person = rng.pick(PEOPLE).copied().unwrap_or(OWNER);
    let (from, to) = if outgoing {
        (OWNER, person)
    } else {
        (person, OWNER)
    };
    let date = rng.range_i64(START_2019, END_2024);
    let lang = if person.lang == Lang::Ja {
        Lang::En
    } else {
        person.lang
    };

    let mut headers: Vec<Header> = Vec::new();
    if !outgoing {
        headers.push(h("Return-Path", format!("<{}>", from.addr)));
        headers.push(received(rng, from.addr, to.addr, date));
    }
    headers.push(h("Date", date_header(rng, date)));
    headers.push(h("From", mailbox(from.name, from.addr, Charset::Utf8)));
    headers.push(h("To", mailbox(to.name, to.addr, Charset::Utf8)));
    let msg_id = message_id(rng, index, from.addr);
    let parent = if !recent.is_empty() && rng.chance(25) {
        recent.get(rng.index(recent.len())).cloned()
    } else {
        None
    };
    let subject = match &parent {
        Some((_, s)) if s.starts_with("Re: ") => s.clone(),
        Some((_, s)) => format!("Re: {s}"),
        None => format!("{} #{}", rng.word(subjects(lang)), index),
    };
    headers.push(h("Subject", subject_value(&subject, Charset::Utf8, false)));
    headers.push(h("Message-ID", &msg_id));
    if let Some((pid, _)) = &parent {
        headers.push(h("In-Reply-To", pid));
        headers.push(h("References", pid));
    }
    if recent.len() >= 64 {
        recent.remove(0);
    }
    recent.push((msg_id, subject));

    let intro = format!("{}\n\n", sentence(rng, lang)).replace('\n', "\r\n");
    let attachment = if target > 24 * 1024 {
        // about 85% of the message in the attachment; base64 grows it by 4/3 plus CRLFs
        let raw_len = target * 85 / 100 * 57 / 78;
        Some(match rng.below(3) {
            0 => Part::attachment(
                "application/pdf",
                "document.pdf",
                &pdf_like(rng, raw_len),
                false,
            ),
            1 => Part::attachment("image/png", "image.png", &png_like(rng, raw_len), false),
            _ => Part::attachment(
                "application/octet-stream",
                "blob.bin",
                &rng.bytes(raw_len),
                false,
            ),
        })
    } else {
        None
    };
    // Serialize once with a probe filler, then splice in a filler sized to hit the target
    // exactly (the size is linear in the filler length).
    const PROBE: usize = 64;
    let probe_filler = ascii_filler(rng, PROBE);
    let mut body = intro.into_bytes();
    let filler_at = body.len();
    body.extend_from_slice(&probe_filler);
    let text = Part {
        headers: vec![
            h("Content-Type", "text/plain; charset=utf-8"),
            h("Content-Transfer-Encoding", "8bit"),
        ],
        body: crate::mime::Body::Leaf(body),
    };
    let probe = match attachment {
        None => message(&headers, &text),
        Some(att) => {
            let boundary = format!("----=_bench_{index:012x}");
            message(&headers, &Part::multi("mixed", &boundary, vec![text, att]))
        }
    };
    let filler_len = (target + PROBE).saturating_sub(probe.len()).max(PROBE);
    // the text part is the first body part, so the first match is the probe filler
    let head_len = probe.len().min(4096);
    let pos = probe
        .get(..head_len)
        .and_then(|head| {
            head.windows(PROBE)
                .position(|w| w == probe_filler.as_slice())
        })
        .unwrap_or(filler_at);
    let mut raw = Vec::with_capacity(probe.len() - PROBE + filler_len);
    raw.extend_from_slice(probe.get(..pos).unwrap_or_default());
    raw.extend_from_slice(&ascii_filler(rng, filler_len));
    raw.extend_from_slice(probe.get(pos + PROBE..).unwrap_or_default());

    let mut flags = Vec::new();
    if outgoing || rng.chance(70) {
        flags.push("\\Seen".to_owned());
    }
    if rng.chance(10) {
        flags.push("\\Answered".to_owned());
    }
    if rng.chance(5) {
        flags.push("\\Flagged".to_owned());
    }
    GenMessage {
        folder: bench_folder(folder_idx),
        raw,
        flags,
        internal_date: date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes_hit_their_targets() {
        let spec = CorpusSpec {
            seed: 3,
            messages: 300,
            ..CorpusSpec::default()
        };
        for m in bench_corpus(&spec) {
            let n = m.raw.len() as u64;
            assert!((1024..1024 * 1024).contains(&n), "size {n}");
        }
    }

    #[test]
    fn total_bytes_mode_stops_after_reaching_total() {
        let spec = CorpusSpec {
            seed: 5,
            messages: 0,
            total_bytes: Some(3_000_000),
            big_attachments: 0,
            folders: 4,
        };
        let sizes: Vec<u64> = bench_corpus(&spec).map(|m| m.raw.len() as u64).collect();
        let total: u64 = sizes.iter().sum();
        assert!(total >= 3_000_000);
        assert!(total - sizes.last().copied().unwrap_or(0) < 3_000_000);
    }

    #[test]
    fn big_attachments_are_spread() {
        let spec = CorpusSpec {
            seed: 9,
            messages: 20,
            total_bytes: None,
            big_attachments: 2,
            folders: 3,
        };
        let big: Vec<usize> = bench_corpus(&spec)
            .enumerate()
            .filter(|(_, m)| m.raw.len() as u64 > 9 * 1024 * 1024)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(big, vec![6, 13]);
    }
}
