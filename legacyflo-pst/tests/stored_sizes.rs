//! PidTagMessageSize and PidTagAttachSize are the sizes as stored (the sum of the
//! properties' sizes), read back by pypff, a reader we did not write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use legacyflo_pst::{MessageMeta, PstWriter, WriterOptions};

#[test]
fn message_and_attachment_sizes_are_the_stored_sizes() {
    common::require_pypff();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sizes.pst");
    let data = common::corpus::bytes(3, 100_000);
    let b64 = {
        use std::fmt::Write as _;
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for (i, c) in data.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                s.push_str("\r\n");
            }
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                let _ = write!(
                    s,
                    "{}",
                    if k <= c.len() {
                        T[((n >> (18 - 6 * k)) & 63) as usize] as char
                    } else {
                        '='
                    }
                );
            }
        }
        s
    };
    let text = "Grüße ".repeat(500); // 3000 chars, 3000 UTF-16 units
    let raw = format!(
        "From: A <a@example.com>\r\nTo: b@example.com\r\nSubject: sizes\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b\r\n\
Content-Type: application/octet-stream; name=\"d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let mut w = PstWriter::create(&p, WriterOptions::default()).unwrap();
    let f = w.folder(&["Inbox"]).unwrap();
    w.add_message(f, raw.as_bytes(), &MessageMeta::default())
        .unwrap();
    w.finish().unwrap();

    let script = r#"
import sys, struct, pypff
f = pypff.file(); f.open(sys.argv[1])
def props(item):
    out = {}
    for r in range(item.number_of_record_sets):
        rs = item.get_record_set(r)
        for e in range(rs.number_of_entries):
            x = rs.get_entry(e)
            out[x.entry_type] = x.data
    return out
def find(x):
    for i in range(x.number_of_sub_messages):
        return x.get_sub_message(i)
    for i in range(x.number_of_sub_folders):
        m = find(x.get_sub_folder(i))
        if m is not None: return m
m = find(f.get_root_folder())
p = props(m)
stored = sum(len(v or b"") for k, v in p.items())
a = m.get_attachment(0)
ap = props(a)
print(struct.unpack("<i", p[0x0E08])[0], stored, struct.unpack("<i", ap[0x0E20])[0], a.get_size())
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pypff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (msg_size, msg_props, att_size, att_data) = (v[0], v[1], v[2], v[3]);
    assert_eq!(att_data, 100_000);
    // The attachment object: its data plus its names, MIME type and fixed properties.
    assert!((100_000..100_000 + 512).contains(&att_size), "{att_size}");
    // The message: its own properties (body 6000 bytes of UTF-16, headers, ...) plus the
    // attachment object plus the recipient row.
    assert!(msg_props > 6_000, "{msg_props}");
    assert!(
        msg_size >= msg_props + att_size && msg_size <= msg_props + att_size + 1024,
        "message size {msg_size}, properties {msg_props}, attachment {att_size}"
    );
}
