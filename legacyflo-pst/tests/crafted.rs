//! Crafted files whose checksums are right but whose sizes, counts and references are
//! hostile (a block size over the limit, an XBLOCK count past its block, a tree that
//! references the same blocks over and over, pages and subnode blocks that point at
//! themselves, property values that all name one large stream): each gives an error
//! naming the problem, never an abort, and the reader never allocates more than the
//! file's size allows. The cases run in a child process whose address space is limited
//! to 1 GiB, so that an allocation from a hostile size fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ndb_map::{Kind, Map, bbt_entry_at, fix_block, fix_page};
use common::{Read, read_every_message};
use legacyflo_pst::{Encoding, MessageMeta, PstReader, PstWriter, WriterOptions};

fn write(name: &str, msgs: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    let opts = WriterOptions {
        encoding: Encoding::None,
        ..Default::default()
    };
    let mut w = PstWriter::create(&p, opts).unwrap();
    let f = w.folder(&["Inbox"]).unwrap();
    for m in msgs {
        w.add_message(f, m, &MessageMeta::default()).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&p).unwrap()
}

fn attachment_message(name: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: a@example.com\r\nSubject: {name}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
         text\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; \
         filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--B--\r\n",
        common::corpus::b64(data)
    )
    .into_bytes()
}

struct Case {
    bytes: Vec<u8>,
    map: Map,
    baseline: Read,
}

impl Case {
    fn new(bytes: Vec<u8>) -> Case {
        let map = Map::load(&bytes);
        let baseline = read_every_message(bytes.clone()).unwrap();
        assert!(baseline.values().all(Result::is_ok));
        Case {
            bytes,
            map,
            baseline,
        }
    }

    /// The message whose node uses a block of `kind`, and that block.
    fn with_block(&self, kind: Kind) -> (u32, u64) {
        self.baseline
            .keys()
            .find_map(|&n| {
                let b = self.map.node_blocks(&self.bytes, n);
                b.into_iter().find(|b| b.1 == kind).map(|b| (n, b.0))
            })
            .unwrap_or_else(|| panic!("no {kind:?}"))
    }

    /// Reads `d`: message `nid` fails with `want` in its error, the others as before.
    fn expect_message(&self, case: &str, d: Vec<u8>, nid: u32, want: &str) {
        let got = read_every_message(d).unwrap_or_else(|e| panic!("{case}: file refused: {e}"));
        for (n, before) in &self.baseline {
            match &got[n] {
                Err(e) if *n == nid => assert!(e.contains(want), "{case}: {e}"),
                Ok(_) if *n == nid => panic!("{case}: message {n:#x} read"),
                other => assert_eq!(other, before, "{case}: message {n:#x}"),
            }
        }
        eprintln!("{case}: ok");
    }

    /// Reads `d`: the file is refused with `want` in the error.
    fn expect_refused(case: &str, d: Vec<u8>, want: &str) {
        match read_every_message(d) {
            Err(e) => assert!(e.contains(want), "{case}: {e}"),
            Ok(_) => panic!("{case}: accepted"),
        }
        eprintln!("{case}: ok");
    }
}

fn put_u16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(d: &mut [u8], at: usize, v: u64) {
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn cases() {
    let mut msgs: Vec<Vec<u8>> = common::corpus::corpus()
        .into_iter()
        .map(|m| m.raw)
        .collect();
    for i in 0..40 {
        msgs.push(format!("Subject: s{i}\r\nFrom: a@example.com\r\n\r\nbody {i}\r\n").into_bytes());
    }
    let c = Case::new(write("crafted.pst", &msgs));
    let ib = |bid: u64| c.map.blocks[&(bid & !1)].0 as usize;

    // A block size over the 8176 bytes a block holds, in the block B-tree (page CRC fixed).
    let (nid, bid) = c.with_block(Kind::Data);
    let mut d = c.bytes.clone();
    let (page, at) = bbt_entry_at(&c.map, &d, bid);
    put_u16(&mut d, at + 16, 0xFFFF);
    fix_page(&mut d, page);
    c.expect_message("cb 0xFFFF", d, nid, "more than a block holds");

    // An XBLOCK count past the end of its block.
    let (nid, bid) = c.with_block(Kind::XBlock);
    let mut d = c.bytes.clone();
    put_u16(&mut d, ib(bid) + 2, 0xFFFF);
    fix_block(&c.map, &mut d, bid);
    c.expect_message("XBLOCK cEnt 0xFFFF", d, nid, "entries do not fit");

    // An XBLOCK whose lcbTotal claims 4 GiB.
    let mut d = c.bytes.clone();
    put_u32(&mut d, ib(bid) + 4, u32::MAX);
    fix_block(&c.map, &mut d, bid);
    c.expect_message("XBLOCK lcbTotal 4 GiB", d, nid, "lcbTotal says 4294967295");

    // An XBLOCK that lists itself: a data tree cannot nest XBLOCKs.
    let mut d = c.bytes.clone();
    put_u64(&mut d, ib(bid) + 8, bid);
    fix_block(&c.map, &mut d, bid);
    c.expect_message("XBLOCK lists itself", d, nid, "level 1, expected 0");

    // A subnode block that lists itself as its SIBLOCK child.
    let (nid, bid) = c.with_block(Kind::SlBlock);
    let mut d = c.bytes.clone();
    d[ib(bid) + 1] = 1; // SLBLOCK -> SIBLOCK: its entries now read as (nid, bid) pairs
    put_u64(&mut d, ib(bid) + 16, bid);
    fix_block(&c.map, &mut d, bid);
    c.expect_message("SIBLOCK lists itself", d, nid, "level 1, expected 0");

    // A property context's BTH claiming 255 levels.
    let (nid, _) = c.with_block(Kind::Data);
    let pc = c.map.nodes[&nid].0;
    let mut d = c.bytes.clone();
    let root = u32::from_le_bytes(d[ib(pc) + 4..ib(pc) + 8].try_into().unwrap());
    let (bth, _) = c.map.heap_item(&d, pc, root);
    d[bth + 3] = 255;
    fix_block(&c.map, &mut d, pc);
    c.expect_message("BTH 255 levels", d, nid, "BTH of 255 levels");

    // A heap page map claiming 65535 allocations.
    let mut d = c.bytes.clone();
    let map_at = ib(pc) + u16::from_le_bytes([d[ib(pc)], d[ib(pc) + 1]]) as usize;
    put_u16(&mut d, map_at, 0xFFFF);
    fix_block(&c.map, &mut d, pc);
    let got = read_every_message(d).unwrap();
    assert!(
        got[&nid].is_err(),
        "cAlloc 0xFFFF: {:?}",
        got[&nid].as_ref().map(|_| ())
    );
    eprintln!("cAlloc 0xFFFF: ok");

    // The node B-tree root lists a child page twice (its last entry copies the one
    // before): the page it listed last, which holds the last messages, is lost.
    let root = &c.map.nbt[0];
    assert!(root.level == 1 && root.keys.len() > 2);
    let n = root.keys.len();
    let mut d = c.bytes.clone();
    let (prev, last) = (
        root.ib as usize + 24 * (n - 2),
        root.ib as usize + 24 * (n - 1),
    );
    let bref = d[prev + 8..prev + 24].to_vec();
    d[last + 8..last + 24].copy_from_slice(&bref);
    fix_page(&mut d, root.ib);
    let lost_page = c
        .map
        .nbt
        .iter()
        .find(|p| p.ib == u64::from_le_bytes(c.bytes[last + 16..last + 24].try_into().unwrap()))
        .unwrap();
    let lost = *lost_page.keys.last().unwrap() as u32;
    assert!(c.baseline.contains_key(&lost));
    let got = read_every_message(d).unwrap();
    for (n, before) in &c.baseline {
        if lost_page.keys.contains(&u64::from(*n)) {
            let e = got[n].as_ref().unwrap_err();
            assert!(e.contains("referenced a second time"), "{e}");
        } else {
            assert_eq!(&got[n], before);
        }
    }
    eprintln!("NBT page listed twice: ok");

    // A leaf page claiming 255 entries.
    let leaf = c.map.nbt.iter().find(|p| p.level == 0).unwrap();
    let mut d = c.bytes.clone();
    d[leaf.ib as usize + 488] = 255;
    fix_page(&mut d, leaf.ib);
    match read_every_message(d) {
        Ok(_) => {}
        Err(e) => assert!(e.contains("do not fit"), "{e}"),
    }
    eprintln!("NBT leaf cEnt 255: ok");

    // A root page beyond the end of the file (header CRCs fixed): refused.
    let mut d = c.bytes.clone();
    put_u64(&mut d, 224, 0x7FFF_FFFF_FE00);
    let partial = common::ndb_map::crc(&d[8..479]);
    put_u32(&mut d, 4, partial);
    let full = common::ndb_map::crc(&d[8..524]);
    put_u32(&mut d, 524, full);
    Case::expect_refused("NBT root past EOF", d, "not a page of the file");

    // An unknown encoding in a header whose CRCs are right: refused (its blocks would be
    // decoded wrongly, their CRCs still right).
    let mut d = c.bytes.clone();
    d[513] = 7;
    let full = common::ndb_map::crc(&d[8..524]);
    put_u32(&mut d, 524, full);
    Case::expect_refused("bCryptMethod 7", d, "bCryptMethod");

    // A 9 MB attachment: its XXBLOCK lists its first XBLOCK twice and claims the total:
    // the tree would be larger than the file, and stops there.
    let big = common::corpus::bytes(9, 9 * 1024 * 1024);
    let c = Case::new(write("big.pst", &[attachment_message("big.bin", &big)]));
    let ib = |bid: u64| c.map.blocks[&(bid & !1)].0 as usize;
    let (nid, xx) = c.with_block(Kind::XXBlock);
    let mut d = c.bytes.clone();
    let first = u64::from_le_bytes(d[ib(xx) + 8..ib(xx) + 16].try_into().unwrap());
    put_u64(&mut d, ib(xx) + 16, first);
    put_u32(&mut d, ib(xx) + 4, 2 * 1021 * 8176);
    fix_block(&c.map, &mut d, xx);
    c.expect_message(
        "XXBLOCK repeats an XBLOCK",
        d,
        nid,
        "holds more than the file",
    );

    // The attachment's string properties all point at its 9 MB data stream: values
    // referenced over and over exhaust the read's budget (4x the file) instead of memory.
    let (_, sub, _) = c.map.nodes[&nid];
    let (_, att_pc, att_sub) = c
        .map
        .sub_entries(&c.bytes, sub)
        .into_iter()
        .find(|e| e.0 & 0x1F == 5)
        .unwrap();
    let (value_nid, _, _) = c.map.sub_entries(&c.bytes, att_sub)[0];
    let mut d = c.bytes.clone();
    let recs = c.map.pc_records(&d, att_pc);
    let mut n = 0;
    for (id, at) in &recs {
        if [0x3001u16, 0x3703, 0x3704, 0x3707, 0x370E].contains(id) {
            put_u16(&mut d, at + 2, 0x0102);
            put_u32(&mut d, at + 4, value_nid);
            n += 1;
        }
    }
    assert!(n >= 4, "{recs:?}");
    fix_block(&c.map, &mut d, att_pc);
    c.expect_message(
        "values all name one stream",
        d,
        nid,
        "more than the file holds",
    );
}

#[test]
fn crafted_files_fail_cleanly_under_a_memory_limit() {
    // `sh -c SCRIPT exe args…`: the script sees the test binary as $0, its arguments as $@.
    common::run_ignored_child(
        "sh",
        &["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\""],
        "crafted_child",
    );
}

#[test]
#[ignore = "run by crafted_files_fail_cleanly_under_a_memory_limit under ulimit -v"]
fn crafted_child() {
    cases();
}

/// Arbitrary bytes (the fuzzing entry point): junk, truncations and PST headers over
/// junk give errors, never panics.
#[test]
fn arbitrary_bytes_give_errors() {
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstsdk__sample1.pst"
    ))
    .unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"!BDN".to_vec(), vec![0; 600]];
    for cut in [512, 564, 4096, 0x4400, sample.len() / 2, sample.len() - 1] {
        inputs.push(sample[..cut].to_vec());
    }
    let mut junk = sample[..564].to_vec();
    junk.extend(common::corpus::bytes(7, 300_000));
    inputs.push(junk);
    for (i, input) in inputs.into_iter().enumerate() {
        if let Ok(r) = PstReader::from_bytes(input)
            && let Ok(folders) = r.all_folders()
        {
            for f in folders {
                if let Ok(ids) = r.message_ids(&f) {
                    for nid in ids {
                        let _ = r.message(nid);
                    }
                }
            }
        }
        eprintln!("input {i}: ok");
    }
}
