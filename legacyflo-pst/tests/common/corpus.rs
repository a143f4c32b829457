//! A small generated corpus covering the MIME shapes the writer must handle.

/// One input message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub folder: Vec<String>,
    pub raw: Vec<u8>,
    pub read: bool,
}

/// Base64 with CRLF every 76 characters.
pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn head(subject: &str, extra: &str, date: &str, id: usize) -> String {
    format!(
        "From: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>, carol@example.net\r\n\
         {extra}Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <msg{id}@example.com>\r\nMIME-Version: 1.0\r\n"
    )
}

fn f(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

/// The corpus: plain, HTML, alternative, attachments (binary, inline with Content-ID),
/// embedded message/rfc822, non-ASCII subjects and folders, several charsets, one
/// attachment over 5 MB, malformed MIME, zero-length parts and empty strings.
pub fn corpus() -> Vec<Msg> {
    let mut v = Vec::new();
    let mut id = 0;
    let add = |folder: Vec<String>, raw: String, read: bool, v: &mut Vec<Msg>| {
        v.push(Msg {
            folder,
            raw: raw.into_bytes(),
            read,
        });
    };
    // 1 plain text
    id += 1;
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\nplain text body.\r\n",
            head("Plain hello", "", "Mon, 01 Jan 2024 10:00:00 +0000", id)
        ),
        true,
        &mut v,
    );
    // 2 html only
    id += 1;
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Only <b>HTML</b> here</p></body></html>\r\n",
            head(
                "HTML only",
                "Cc: Dave <dave@example.com>\r\n",
                "Tue, 02 Jan 2024 11:30:00 +0100",
                id
            )
        ),
        false,
        &mut v,
    );
    // 3 alternative
    id += 1;
    add(
        f(&["Inbox", "Sub ünï"]),
        format!(
            "{}Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nText part of alternative\r\n--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>HTML part of alternative</body></html>\r\n--ALT--\r\n",
            head(
                "RE: Alternative",
                "Importance: high\r\nIn-Reply-To: <msg1@example.com>\r\nReferences: <msg1@example.com>\r\n",
                "Wed, 03 Jan 2024 09:15:00 -0500",
                id
            )
        ),
        true,
        &mut v,
    );
    // 4 mixed with binary attachment and text attachment
    id += 1;
    let pdf = bytes(4, 30_000);
    add(
        f(&["Archiv", "2024", "Q1"]),
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n--MIX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--MIX\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--MIX\r\nContent-Type: text/csv; name=\"data.csv\"\r\nContent-Disposition: attachment; filename=\"data.csv\"\r\n\r\na,b\r\n1,2\r\n--MIX--\r\n",
            head(
                "Report with attachments",
                "Bcc: Eve <eve@example.com>\r\n",
                "Thu, 04 Jan 2024 08:00:00 +0000",
                id
            ),
            b64(&pdf)
        ),
        true,
        &mut v,
    );
    // 5 related html + inline image with Content-ID
    id += 1;
    let png = bytes(5, 5000);
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: multipart/related; boundary=\"REL\"\r\n\r\n--REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><img src=\"cid:img1@example.com\"> inline image</body></html>\r\n--REL\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-Disposition: inline; filename=\"logo.png\"\r\nContent-ID: <img1@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--REL--\r\n",
            head("Inline image", "", "Fri, 05 Jan 2024 12:00:00 +0000", id),
            b64(&png)
        ),
        false,
        &mut v,
    );
    // 6 embedded message/rfc822
    id += 1;
    let inner = format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\nI am the embedded message.\r\n",
        head("Inner message", "", "Sat, 06 Jan 2024 07:00:00 +0000", 1000)
    );
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"EMB\"\r\n\r\n--EMB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nForwarding a message.\r\n--EMB\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"inner.eml\"\r\n\r\n{inner}\r\n--EMB--\r\n",
            head(
                "FW: Inner message",
                "",
                "Sat, 06 Jan 2024 08:00:00 +0000",
                id
            )
        ),
        true,
        &mut v,
    );
    // 7 non-ASCII subject in a non-ASCII folder
    id += 1;
    add(
        f(&["日本語フォルダ"]),
        format!(
            "{}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus München — 東京からこんにちは\r\n",
            head(
                "=?UTF-8?B?R3LDvMOfZSDml6XmnKw=?=",
                "",
                "Sun, 07 Jan 2024 10:00:00 +0900",
                id
            )
        ),
        true,
        &mut v,
    );
    // 8 ISO-8859-1
    id += 1;
    let mut raw = format!(
        "{}Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        head(
            "=?iso-8859-1?Q?Caf=E9_cr=E8me?=",
            "",
            "Mon, 08 Jan 2024 10:00:00 +0000",
            id
        )
    )
    .into_bytes();
    raw.extend_from_slice(b"Un caf\xe9 cr\xe8me, s'il vous pla\xeet.\r\n");
    v.push(Msg {
        folder: f(&["Sent"]),
        raw,
        read: true,
    });
    // 9 windows-1251 / KOI8-R
    id += 1;
    let mut raw = format!(
        "{}Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        head(
            "=?koi8-r?B?8NLJ18XU?=",
            "",
            "Tue, 09 Jan 2024 10:00:00 +0000",
            id
        )
    )
    .into_bytes();
    raw.extend_from_slice(b"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2!\r\n");
    v.push(Msg {
        folder: f(&["Sent"]),
        raw,
        read: false,
    });
    // 10 shift_jis html
    id += 1;
    let mut raw = format!("{}Content-Type: text/html; charset=shift_jis\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<html><body>", head("Shift JIS", "", "Wed, 10 Jan 2024 10:00:00 +0000", id)).into_bytes();
    raw.extend_from_slice(b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd</body></html>\r\n");
    v.push(Msg {
        folder: f(&["日本語フォルダ"]),
        raw,
        read: true,
    });
    // 11 big attachment (> 5 MB)
    id += 1;
    let big = bytes(11, 5 * 1024 * 1024 + 12345);
    add(
        f(&["Archiv", "2024"]),
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"BIG\"\r\n\r\n--BIG\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBig one.\r\n--BIG\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--BIG--\r\n",
            head("Big attachment", "", "Thu, 11 Jan 2024 10:00:00 +0000", id),
            b64(&big)
        ),
        true,
        &mut v,
    );
    // 12 malformed MIME: boundary never closed, broken base64, header garbage
    id += 1;
    add(
        f(&["Inbox"]),
        format!(
            "{}X-Garbage\r\nContent-Type: multipart/mixed; boundary=\"NEVER\"\r\n\r\n--NEVER\r\nContent-Type: text/plain\r\n\r\nbody before a part that never ends\r\n--NEVER\r\nContent-Type: application/octet-stream; name=\"broken.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all!!!\r\n",
            head("Malformed", "", "Fri, 12 Jan 2024 10:00:00 +0000", id)
        ),
        true,
        &mut v,
    );
    // 13 long plain body (> 8 KB, forces a data tree) with many recipients
    id += 1;
    let body: String = (0..2000)
        .map(|i| format!("Line {i} of a long body.\r\n"))
        .collect();
    let cc: Vec<String> = (0..40)
        .map(|i| format!("Person {i} <p{i}@example.com>"))
        .collect();
    add(
        f(&["Inbox", "Sub ünï"]),
        format!(
            "{}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            head(
                "Long body",
                &format!("Cc: {}\r\n", cc.join(", ")),
                "Sat, 13 Jan 2024 10:00:00 +0000",
                id
            )
        ),
        false,
        &mut v,
    );
    // 14 zero-length values (seen in real mail): an empty text part, an empty HTML part,
    // and empty application/octet-stream parts with a Content-ID, base64 or not, one
    // with a file name. Stored the way Outlook stores zero-length values (HNID 0).
    id += 1;
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: multipart/mixed; boundary=\"ZERO\"\r\n\r\n--ZERO\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n--ZERO\r\nContent-Type: application/octet-stream\r\nContent-ID: <empty1@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n--ZERO\r\nContent-Type: application/octet-stream\r\nContent-ID: <empty2@example.com>\r\n\r\n\r\n--ZERO\r\nContent-Type: application/octet-stream; name=\"empty.bin\"\r\nContent-Disposition: attachment; filename=\"empty.bin\"\r\nContent-ID: <empty3@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n--ZERO\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\r\n--ZERO--\r\n",
            head(
                "Zero-length parts",
                "",
                "Sun, 14 Jan 2024 10:00:00 +0000",
                id
            )
        ),
        true,
        &mut v,
    );
    // 15 an HTML-only message whose HTML is empty.
    id += 1;
    add(
        f(&["Inbox"]),
        format!(
            "{}Content-Type: text/html; charset=utf-8\r\n\r\n",
            head("Empty HTML", "", "Sun, 14 Jan 2024 11:00:00 +0000", id)
        ),
        true,
        &mut v,
    );
    // 16 empty strings: an empty subject, a sender without a display name, no
    // recipients, no body at all.
    add(
        f(&["Inbox"]),
        "From: \"\" <empty@example.com>\r\nTo: undisclosed-recipients:;\r\nSubject: \r\n\
         Date: Mon, 15 Jan 2024 10:00:00 +0000\r\nMessage-ID: <empty@example.com>\r\n\r\n"
            .to_string(),
        false,
        &mut v,
    );
    v
}

/// Attachments of `raw` (as mail-parser sees them, embedded messages excluded) that hold
/// no bytes.
pub fn zero_length_attachments(raw: &[u8]) -> usize {
    mail_parser::MessageParser::default()
        .parse(raw)
        .map(|m| {
            m.attachments()
                .filter(|a| !matches!(a.body, mail_parser::PartType::Message(_)))
                .filter(|a| a.contents().is_empty())
                .count()
        })
        .unwrap_or(0)
}
