//! Shared building blocks of the sample and bench generators: headers, bodies,
//! attachments.

use crate::encode::{Charset, crc32, encoded_words, rfc5322_date};
use crate::mime::{Cte, Header, Part, h, mailbox};
use crate::rng::Rng;
use crate::text::{Lang, Person, legacy_charsets, paragraphs, sentence};

/// Time zone offsets (minutes east of UTC) used for Date headers.
pub const OFFSETS: &[i32] = &[0, 60, 60, 120, 120, -300, -240, 540, 180, 330, -480];

/// 2019-01-01T00:00:00Z.
pub const START_2019: i64 = 1_546_300_800;
/// 2025-01-01T00:00:00Z.
pub const END_2024: i64 = 1_735_689_600;

/// Domain part of an address.
pub fn domain(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("localhost", |(_, d)| d)
}

/// A Message-ID for a message from `addr`.
pub fn message_id(rng: &mut Rng, seq: u64, addr: &str) -> String {
    format!("<{:016x}.{seq}@{}>", rng.next_u64(), domain(addr))
}

/// A Date header value for `ts` in a random zone.
pub fn date_header(rng: &mut Rng, ts: i64) -> String {
    let off = rng.pick(OFFSETS).copied().unwrap_or(0);
    rfc5322_date(ts, off)
}

/// A `Received:` header for delivery to `rcpt` at `ts`.
pub fn received(rng: &mut Rng, from: &str, rcpt: &str, ts: i64) -> Header {
    let d = domain(from);
    h(
        "Received",
        format!(
            "from mx.{d} (mx.{d} [192.0.2.{}])\r\n\tby mail.firma.example (Postfix) with ESMTPS id {:010X}\r\n\tfor <{rcpt}>; {}",
            rng.range(1, 255),
            rng.next_u64() & 0xFF_FFFF_FFFF,
            rfc5322_date(ts, 60)
        ),
    )
}

/// A subject header value: ASCII as is, non-ASCII as RFC 2047 words in `cs`
/// (or raw UTF-8 when `raw_utf8`).
pub fn subject_value(subject: &str, cs: Charset, raw_utf8: bool) -> Vec<u8> {
    if subject.is_ascii() {
        return subject.as_bytes().to_vec();
    }
    if raw_utf8 {
        return subject.as_bytes().to_vec();
    }
    let q = matches!(cs, Charset::Latin1 | Charset::Cp1252)
        || (cs == Charset::Utf8 && subject.len() < 30);
    encoded_words(subject, cs, q).into_bytes()
}

/// Formats an address list, folded one address per line.
pub fn address_list(people: &[Person], cs: Charset) -> String {
    people
        .iter()
        .map(|p| mailbox(p.name, p.addr, header_charset(p, cs)))
        .collect::<Vec<_>>()
        .join(",\r\n ")
}

/// The charset used for a person's encoded name: the message charset when it can
/// represent the person's script, UTF-8 otherwise.
pub fn header_charset(p: &Person, cs: Charset) -> Charset {
    if cs == Charset::UsAscii || !legacy_charsets(p.lang).contains(&cs) {
        Charset::Utf8
    } else {
        cs
    }
}

/// Picks a charset and transfer encoding for a text in `lang`.
pub fn pick_text_encoding(rng: &mut Rng, lang: Lang) -> (Charset, Cte) {
    let legacy = rng.chance(55);
    let cs = if legacy {
        rng.pick(legacy_charsets(lang))
            .copied()
            .unwrap_or(Charset::Utf8)
    } else {
        Charset::Utf8
    };
    let cte = match cs {
        Charset::UsAscii => Cte::SevenBit,
        Charset::Utf8 => match rng.below(4) {
            0 | 1 => Cte::EightBit,
            2 => Cte::Qp,
            _ => Cte::Base64,
        },
        Charset::Latin1 | Charset::Cp1252 => {
            if rng.chance(50) {
                Cte::EightBit
            } else {
                Cte::Qp
            }
        }
        Charset::Koi8R => {
            if rng.chance(70) {
                Cte::EightBit
            } else {
                Cte::Base64
            }
        }
        Charset::Iso2022Jp => {
            if rng.chance(50) {
                Cte::SevenBit
            } else {
                Cte::Base64
            }
        }
        Charset::ShiftJis => Cte::Base64,
    };
    (cs, cte)
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An HTML document rendering `text` (paragraphs separated by blank lines).
pub fn html_of(text: &str, title: &str, with_image_cid: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    out.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>");
    out.push_str(&html_escape(title));
    out.push_str("</title>\n</head>\n<body style=\"font-family: Arial, sans-serif;\">\n");
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        out.push_str("<p>");
        let lines: Vec<String> = para.lines().map(html_escape).collect();
        out.push_str(&lines.join("<br>\n"));
        out.push_str("</p>\n");
    }
    if let Some(cid) = with_image_cid {
        out.push_str(&format!(
            "<p><img src=\"cid:{cid}\" alt=\"logo\" width=\"64\" height=\"64\"></p>\n"
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Greeting + paragraphs + signature in `lang`.
pub fn letter(
    rng: &mut Rng,
    lang: Lang,
    to: &Person,
    from: &Person,
    size: usize,
    from_lines: bool,
) -> String {
    let first = to.name.split(' ').next().unwrap_or(to.name);
    let greeting = match lang {
        Lang::En => format!("Hi {first},\n\n"),
        Lang::De => format!("Hallo {first},\n\n"),
        Lang::Fr => format!("Bonjour {first},\n\n"),
        Lang::Ru => format!("Здравствуйте, {first}!\n\n"),
        Lang::Ja => format!("{}様\n\n", to.name),
    };
    let closing = match lang {
        Lang::En => "Best regards,",
        Lang::De => "Viele Grüße",
        Lang::Fr => "Cordialement,",
        Lang::Ru => "С уважением,",
        Lang::Ja => "よろしくお願いいたします。",
    };
    let mut s = greeting;
    s.push_str(&paragraphs(rng, lang, size, from_lines));
    s.push_str(closing);
    s.push('\n');
    s.push_str(from.name);
    s.push_str("\n\n-- \n");
    s.push_str(from.name);
    s.push_str(" | ");
    s.push_str(from.addr);
    s.push('\n');
    s
}

/// Lines of a quoted earlier message (`> ` prefixed).
pub fn quoted_block(rng: &mut Rng, lang: Lang, who: &Person, when: &str) -> String {
    let intro = match lang {
        Lang::De => format!("Am {when} schrieb {}:\n", who.name),
        Lang::Fr => format!("Le {when}, {} a écrit :\n", who.name),
        _ => format!("On {when}, {} wrote:\n", who.name),
    };
    let mut s = intro;
    for _ in 0..rng.range(2, 6) {
        s.push_str("> ");
        s.push_str(&sentence(rng, lang));
        s.push('\n');
    }
    s
}

/// A PDF-looking document of about `size` bytes (header, objects, a random binary stream).
pub fn pdf_like(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 512);
    v.extend_from_slice(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
    );
    v.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    v.extend_from_slice(b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\n");
    let stream_len = size.saturating_sub(400).max(16);
    v.extend_from_slice(
        format!("4 0 obj\n<< /Length {stream_len} /Filter /FlateDecode >>\nstream\n").as_bytes(),
    );
    let start = v.len();
    v.resize(start + stream_len, 0);
    if let Some(tail) = v.get_mut(start..) {
        rng.fill(tail);
    }
    v.extend_from_slice(b"\nendstream\nendobj\nxref\n0 5\n0000000000 65535 f \ntrailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n0\n%%EOF\n");
    v
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc_input = Vec::with_capacity(4 + data.len());
    crc_input.extend_from_slice(kind);
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc_input);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

/// A PNG-looking image of about `size` bytes: valid signature and chunk framing with
/// correct CRCs, random IDAT payload.
pub fn png_like(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 64);
    v.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let w = rng.range(16, 800) as u32;
    let hgt = rng.range(16, 600) as u32;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&hgt.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut v, b"IHDR", &ihdr);
    let idat = rng.bytes(size.saturating_sub(57).max(8));
    png_chunk(&mut v, b"IDAT", &idat);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// An attachment part of a random kind and about `size` bytes (before base64).
pub fn random_attachment(rng: &mut Rng, size: usize, lang: Lang) -> Part {
    let non_ascii = rng.chance(30);
    match rng.below(5) {
        0 | 1 => {
            let name = if non_ascii {
                match lang {
                    Lang::De => "Übersicht März.pdf",
                    Lang::Fr => "Réunion été.pdf",
                    Lang::Ru => "Отчёт.pdf",
                    Lang::Ja => "会議の資料.pdf",
                    Lang::En => "résumé.pdf",
                }
            } else {
                "report.pdf"
            };
            Part::attachment(
                "application/pdf",
                name,
                &pdf_like(rng, size),
                rng.chance(50),
            )
        }
        2 | 3 => {
            let name = if non_ascii {
                "Foto_Köln.png"
            } else {
                "screenshot.png"
            };
            Part::attachment("image/png", name, &png_like(rng, size), rng.chance(50))
        }
        _ => Part::attachment(
            "application/octet-stream",
            "data.bin",
            &rng.bytes(size),
            false,
        ),
    }
}
