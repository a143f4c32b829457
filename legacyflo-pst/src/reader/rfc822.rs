//! Rebuilds RFC 5322 bytes from message properties.

use std::fmt::Write as _;

use super::ltp::{PropValue, Props};
use crate::messaging::props::{decode_subject, unix_from_filetime};

/// A message object: PC, recipient rows, attachments.
pub struct MessageObject {
    pub props: Props,
    pub recipients: Vec<Props>,
    pub attachments: Vec<AttachmentObject>,
}

/// An attachment object.
pub struct AttachmentObject {
    pub props: Props,
    pub embedded: Option<Box<MessageObject>>,
}

fn s(p: &Props, id: u16) -> Option<&str> {
    match p.get(&id) {
        Some(PropValue::Str(v)) if !v.is_empty() => Some(v.as_str()),
        _ => None,
    }
}

fn int(p: &Props, id: u16) -> Option<i32> {
    match p.get(&id) {
        Some(PropValue::Int(v)) => Some(*v),
        _ => None,
    }
}

/// Standard base64 with CRLF every 76 characters.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b0 = c.first().copied().unwrap_or(0);
        let b1 = c.get(1).copied().unwrap_or(0);
        let b2 = c.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 2047 encoding of a header text when it is not plain ASCII.
fn enc(v: &str) -> String {
    if v.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return v.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64(v.as_bytes()).replace("\r\n", ""))
}

fn mailbox(name: Option<&str>, addr: Option<&str>) -> Option<String> {
    match (name, addr) {
        (Some(n), Some(a)) if n != a => Some(format!("\"{}\" <{a}>", enc(&n.replace('"', "'")))),
        (_, Some(a)) => Some(format!("<{a}>")),
        (Some(n), None) => Some(format!("\"{}\" <>", enc(n))),
        _ => None,
    }
}

fn rfc2822_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[((m - 1).clamp(0, 11)) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn charset(codepage: Option<i32>) -> &'static str {
    match codepage {
        Some(1252) => "windows-1252",
        Some(28591) => "iso-8859-1",
        Some(28592) => "iso-8859-2",
        Some(28605) => "iso-8859-15",
        Some(932) => "shift_jis",
        Some(936) => "gb2312",
        Some(949) => "ks_c_5601-1987",
        Some(950) => "big5",
        Some(20866) => "koi8-r",
        Some(1251) => "windows-1251",
        Some(50220) => "iso-2022-jp",
        _ => "utf-8",
    }
}

/// Header lines of the stored transport headers, minus the MIME structure headers.
fn transport_headers(h: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for line in h.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if !skip {
                out.push_str(line);
                out.push_str("\r\n");
            }
            continue;
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        skip = name.starts_with("content-") || name == "mime-version" || !line.contains(':');
        if !skip {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out
}

fn synth_headers(m: &MessageObject) -> String {
    let p = &m.props;
    let mut h = String::new();
    if let Some(f) = mailbox(
        s(p, 0x0042).or(s(p, 0x0C1A)),
        s(p, 0x5D02)
            .or(s(p, 0x0065))
            .or(s(p, 0x5D01))
            .or(s(p, 0x0C1F)),
    ) {
        let _ = write!(h, "From: {f}\r\n");
    }
    for (kind, name) in [(1, "To"), (2, "Cc"), (3, "Bcc")] {
        let list: Vec<String> = m
            .recipients
            .iter()
            .filter(|r| int(r, 0x0C15).unwrap_or(1) == kind)
            .filter_map(|r| mailbox(s(r, 0x3001), s(r, 0x39FE).or(s(r, 0x3003))))
            .collect();
        if !list.is_empty() {
            let _ = write!(h, "{name}: {}\r\n", list.join(", "));
        }
    }
    if let Some(subj) = s(p, 0x0037) {
        let _ = write!(h, "Subject: {}\r\n", enc(&decode_subject(subj)));
    }
    let date = match p.get(&0x0039).or(p.get(&0x0E06)) {
        Some(PropValue::Time(t)) => Some(unix_from_filetime(*t)),
        _ => None,
    };
    if let Some(d) = date {
        let _ = write!(h, "Date: {}\r\n", rfc2822_date(d));
    }
    for (id, name) in [
        (0x1035, "Message-ID"),
        (0x1042, "In-Reply-To"),
        (0x1039, "References"),
    ] {
        if let Some(v) = s(p, id) {
            let _ = write!(h, "{name}: {v}\r\n");
        }
    }
    match int(p, 0x0017) {
        Some(2) => h.push_str("Importance: high\r\n"),
        Some(0) => h.push_str("Importance: low\r\n"),
        _ => {}
    }
    h
}

fn boundary(depth: usize, n: usize) -> String {
    format!("----=_legacyflo_{depth}_{n}")
}

fn text_part(out: &mut Vec<u8>, ctype: &str, cs: &str, data: &[u8]) {
    write_str(
        out,
        &format!(
            "Content-Type: {ctype}; charset=\"{cs}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64(data)
        ),
    );
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn body(out: &mut Vec<u8>, m: &MessageObject, depth: usize) {
    let p = &m.props;
    let text = s(p, 0x1000).map(|t| t.as_bytes().to_vec());
    let cp = int(p, 0x3FDE);
    let html: Option<(Vec<u8>, &str)> = match p.get(&0x1013) {
        Some(PropValue::Binary(b)) if !b.is_empty() => Some((b.clone(), charset(cp))),
        Some(PropValue::Str(v)) if !v.is_empty() => Some((v.as_bytes().to_vec(), "utf-8")),
        _ => None,
    };
    let alt = |out: &mut Vec<u8>| match (&text, &html) {
        (Some(t), Some((h, cs))) => {
            let b = boundary(depth, 1);
            write_str(
                out,
                &format!("Content-Type: multipart/alternative; boundary=\"{b}\"\r\n\r\n--{b}\r\n"),
            );
            text_part(out, "text/plain", "utf-8", t);
            write_str(out, &format!("--{b}\r\n"));
            text_part(out, "text/html", cs, h);
            write_str(out, &format!("--{b}--\r\n"));
        }
        (None, Some((h, cs))) => text_part(out, "text/html", cs, h),
        (Some(t), None) => text_part(out, "text/plain", "utf-8", t),
        (None, None) => text_part(out, "text/plain", "utf-8", b""),
    };
    if m.attachments.is_empty() {
        alt(out);
        return;
    }
    let b = boundary(depth, 0);
    write_str(
        out,
        &format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n"),
    );
    alt(out);
    for a in &m.attachments {
        write_str(out, &format!("--{b}\r\n"));
        let ap = &a.props;
        let name = s(ap, 0x3707).or(s(ap, 0x3704)).or(s(ap, 0x3001));
        let cid = s(ap, 0x3712);
        let hidden = matches!(ap.get(&0x7FFE), Some(PropValue::Int(1)));
        let disp = if hidden || (cid.is_some() && int(ap, 0x3714).unwrap_or(0) & 4 != 0) {
            "inline"
        } else {
            "attachment"
        };
        let fname = name
            .map(|n| format!("; filename=\"{}\"", enc(&n.replace('"', "'"))))
            .unwrap_or_default();
        if let Some(e) = &a.embedded {
            write_str(
                out,
                &format!(
                    "Content-Type: message/rfc822\r\nContent-Disposition: {disp}{fname}\r\n\r\n"
                ),
            );
            out.extend_from_slice(&build_depth(e, depth + 1));
            write_str(out, "\r\n");
            continue;
        }
        let mime = s(ap, 0x370E).unwrap_or("application/octet-stream");
        let ctname = name
            .map(|n| format!("; name=\"{}\"", enc(&n.replace('"', "'"))))
            .unwrap_or_default();
        write_str(
            out,
            &format!(
                "Content-Type: {mime}{ctname}\r\nContent-Disposition: {disp}{fname}\r\nContent-Transfer-Encoding: base64\r\n"
            ),
        );
        if let Some(c) = cid {
            write_str(out, &format!("Content-ID: <{c}>\r\n"));
        }
        let data: &[u8] = match ap.get(&0x3701) {
            Some(PropValue::Binary(d)) => d,
            _ => &[],
        };
        write_str(out, &format!("\r\n{}\r\n", base64(data)));
    }
    write_str(out, &format!("--{b}--\r\n"));
}

fn build_depth(m: &MessageObject, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let headers = match s(&m.props, 0x007D) {
        Some(h) => transport_headers(h),
        None => synth_headers(m),
    };
    write_str(&mut out, &headers);
    write_str(&mut out, "MIME-Version: 1.0\r\n");
    body(&mut out, m, depth);
    out
}

/// RFC 5322 bytes of a message object.
pub fn build(m: &MessageObject) -> Vec<u8> {
    build_depth(m, 0)
}
