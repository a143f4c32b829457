//! Files past 4 GB and volume rolling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use legacyflo_pst::{Encoding, MessageMeta, PstReader, PstWriter, WriterOptions};

fn big_message(seed: u64, size: usize) -> Vec<u8> {
    let data = corpus::bytes(seed, size);
    let mut b64 = String::with_capacity(size * 4 / 3 + size / 38);
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            b64.push_str("\r\n");
        }
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            b64.push(if k <= c.len() {
                T[((n >> (18 - 6 * k)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    format!(
        "From: Big <big@example.com>\r\nTo: You <you@example.org>\r\nSubject: Big {seed}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nbig\r\n--B\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--B--\r\n"
    )
    .into_bytes()
}

/// A message with one `size`-byte attachment sent as `Content-Transfer-Encoding: binary`
/// (no base64 to decode, so the 4.3 GB test stays quick).
fn big_binary_message(seed: u64, size: usize) -> Vec<u8> {
    let boundary = "=_legacyflo_big_boundary_7f3a9c_=";
    let mut v = format!(
        "From: Big <big@example.com>\r\nTo: You <you@example.org>\r\nSubject: Big {seed}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nbig\r\n--{boundary}\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    )
    .into_bytes();
    v.extend_from_slice(&corpus::bytes(seed, size));
    v.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    v
}

/// A file over 4.3 GB: 64-bit offsets, FMap pages, XXBLOCK attachments (> 8.3 MB), deep
/// B-trees; checked by outlook-pst, pypff and our reader. Takes about a minute.
#[test]
fn file_over_4_3_gb_is_valid() {
    // The file is 4.4 GB; leave room for the readers' own temporaries.
    let dir = roomy_tempdir(5_000_000_000);
    let p = dir.path().join("big.pst");
    let raw = big_binary_message(1, 96 * 1024 * 1024);
    let mut w = PstWriter::create(
        &p,
        WriterOptions {
            encoding: Encoding::Permute,
            ..Default::default()
        },
    )
    .unwrap();
    let a = w.folder(&["Big", "Part A"]).unwrap();
    let b = w.folder(&["Big", "Part B"]).unwrap();
    let small = w.folder(&["Small"]).unwrap();
    let n = 46;
    for i in 0..n {
        w.add_message(
            if i % 2 == 0 { a } else { b },
            &raw,
            &MessageMeta::default(),
        )
        .unwrap();
        let s = format!("From: a@b.c\r\nSubject: small {i}\r\n\r\nsmall body {i}\r\n");
        w.add_message(
            small,
            s.as_bytes(),
            &MessageMeta {
                read: true,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let v = w.finish().unwrap();
    assert_eq!(v.len(), 1);
    assert!(
        v[0].bytes > 4_300_000_000,
        "file is only {} bytes",
        v[0].bytes
    );
    assert_eq!(std::fs::metadata(&p).unwrap().len(), v[0].bytes);

    let walk = outlook_walk(&p);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    assert_eq!(walk.messages, 2 * n);
    assert_eq!(walk.attachments, n);

    let counts = pypff_counts_opt(&p, false);
    assert_eq!(counts.get("Big/Part A"), Some(&(n / 2)));
    assert_eq!(counts.get("Big/Part B"), Some(&(n / 2)));
    assert_eq!(counts.get("Small"), Some(&n));

    // Our reader: the last message (stored past 4 GB) comes back intact.
    let r = PstReader::open(&p).unwrap();
    let f = r
        .folders()
        .unwrap()
        .into_iter()
        .find(|f| f.path == ["Big", "Part B"])
        .unwrap();
    let last = r.messages(&f).unwrap().last().unwrap().unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&last.raw)
        .unwrap();
    let att = parsed.attachments().next().unwrap();
    assert_eq!(att.contents().len(), 96 * 1024 * 1024);
    assert!(att.contents() == corpus::bytes(1, 96 * 1024 * 1024).as_slice());
    drop(dir);
}

#[test]
fn small_cap_rolls_volumes_without_splitting_messages() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("roll.pst");
    let msgs: Vec<Msg> = (0..12)
        .map(|i| Msg {
            folder: vec!["Inbox".into(), format!("F{}", i % 3)],
            raw: big_message(100 + i, 700_000),
            read: i % 2 == 0,
        })
        .collect();
    let v = write_pst(
        &p,
        &msgs,
        WriterOptions {
            volume_cap: 4 * 1024 * 1024,
            ..Default::default()
        },
    );
    assert!(v.len() >= 3, "expected several volumes, got {v:?}");
    assert_eq!(v[0].path, p);
    assert_eq!(v[1].path, dir.path().join("roll-002.pst"));
    assert_eq!(v[2].path, dir.path().join("roll-003.pst"));
    let total: u64 = v.iter().map(|x| x.messages).sum();
    assert_eq!(total, 12);
    let mut seen = 0;
    for vol in &v {
        assert!(
            vol.bytes <= 4 * 1024 * 1024 + 253_952,
            "{vol:?} over the cap"
        );
        let walk = outlook_walk(&vol.path);
        assert!(walk.errors.is_empty(), "{:?}: {:?}", vol.path, walk.errors);
        assert_eq!(walk.messages as u64, vol.messages);
        assert_eq!(
            walk.attachments as u64, vol.messages,
            "every message complete in one volume"
        );
        let counts = pypff_counts(&vol.path);
        assert_eq!(counts.values().sum::<usize>() as u64, vol.messages);
        let r = PstReader::open(&vol.path).unwrap();
        for f in r.folders().unwrap() {
            for m in r.messages(&f).unwrap() {
                let m = m.unwrap();
                let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
                assert_eq!(
                    parsed.attachments().next().unwrap().contents().len(),
                    700_000
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 12);
}
