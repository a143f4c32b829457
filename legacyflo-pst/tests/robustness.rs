//! Malformed input never panics: the writer stores or reports, the reader errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use legacyflo_pst::{MessageMeta, PstReader, PstWriter, WriterOptions};

#[test]
fn malformed_messages_are_stored_with_problems_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.pst");
    let mut w = PstWriter::create(&p, WriterOptions::default()).unwrap();
    let f = w.folder(&["Bad"]).unwrap();
    let good = common::corpus::corpus();
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"no header separator at all".to_vec(),
        vec![0xFF; 10_000],
        b"Subject: =?bogus?Q?x?=\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n"
            .to_vec(),
    ];
    // Truncations and byte flips of real messages.
    for (i, m) in good.iter().enumerate().take(10) {
        let raw = &m.raw;
        inputs.push(raw[..raw.len() / 2].to_vec());
        let mut x = raw.clone();
        for k in (i..x.len()).step_by(97) {
            x[k] ^= 0x5A;
        }
        inputs.push(x);
    }
    let mut reported = 0;
    for raw in &inputs {
        let out = w.add_message(f, raw, &MessageMeta::default()).unwrap();
        if !out.problems.is_empty() {
            reported += 1;
        }
    }
    assert!(reported >= 1, "no malformed input was reported");
    w.finish().unwrap();
    let walk = common::outlook_walk(&p);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    assert_eq!(walk.messages, inputs.len());
    let r = PstReader::open(&p).unwrap();
    let folder = r
        .folders()
        .unwrap()
        .into_iter()
        .find(|x| x.path == ["Bad"])
        .unwrap();
    assert_eq!(
        r.messages(&folder).unwrap().filter(|m| m.is_ok()).count(),
        inputs.len()
    );
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let src = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstsdk__sample1.pst"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("damaged.pst");
    let mut x: u64 = 12345;
    for round in 0..200 {
        let mut data = src.clone();
        if round % 4 == 0 {
            data.truncate((round * 1357) % src.len());
        }
        for _ in 0..(1 + round % 16) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % data.len().max(1);
            if let Some(b) = data.get_mut(at) {
                *b ^= (x >> 32) as u8 | 1;
            }
        }
        std::fs::write(&p, &data).unwrap();
        if let Ok(r) = PstReader::open(&p)
            && let Ok(folders) = r.all_folders()
        {
            for f in folders {
                if let Ok(it) = r.messages(&f) {
                    it.for_each(drop);
                }
            }
        }
    }
}
