//! Zero-length values (attachment data, a Content-ID) are stored the way Outlook and the
//! PST SDK store them: a property context record whose dwValueHnid is 0 (an HID never has index 0, [MS-PST] §2.3.1.1;
//! the PST SDK's `get_value_variable` reads HNID 0 as an empty value), not a zero-size
//! heap item (a zero-size allocation is a freed slot: Outlook counts exactly those in
//! the page map's cFree, and may reuse them). Empty bodies are left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::ndb_map::Map;
use legacyflo_pst::{MessageMeta, PstReader, PstWriter, WriterOptions};

/// (type, dwValueHnid) of the PC records of node `bid_data` in the decoded file `d`.
fn records(map: &Map, d: &[u8], bid_data: u64) -> BTreeMap<u16, (u16, u32)> {
    map.pc_records(d, bid_data)
        .into_iter()
        .map(|(id, at)| {
            let t = u16::from_le_bytes([d[at + 2], d[at + 3]]);
            let v = u32::from_le_bytes(d[at + 4..at + 8].try_into().unwrap());
            (id, (t, v))
        })
        .collect()
}

#[test]
fn outlook_stores_a_zero_length_attachment_as_hnid_0() {
    let f = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstconv__outlook.pst"
    ))
    .unwrap();
    let map = Map::load(&f);
    let d = map.decoded(&f);
    let (_, sub, _) = map.nodes[&0x100168];
    let (_, pc, _) = map
        .sub_entries(&d, sub)
        .into_iter()
        .find(|e| e.0 == 0x8045)
        .unwrap();
    let r = records(&map, &d, pc);
    assert_eq!(r[&0x3705], (0x0003, 1), "attached by value");
    assert_eq!(r[&0x3701], (0x0102, 0), "PidTagAttachDataBinary: HNID 0");
}

#[test]
fn zero_length_values_are_written_as_hnid_0() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zero.pst");
    let mut w = PstWriter::create(&p, WriterOptions::default()).unwrap();
    let inbox = w.folder(&["Inbox"]).unwrap();
    let corpus = common::corpus::corpus();
    // Adds the corpus message whose subject is `subject`; returns its node id.
    let mut add = |subject: &str| {
        let m = corpus
            .iter()
            .find(|m| {
                m.raw
                    .windows(subject.len())
                    .any(|x| x == subject.as_bytes())
            })
            .unwrap();
        w.add_message(inbox, &m.raw, &MessageMeta::default())
            .unwrap()
            .node_id
    };
    let nid = add("Zero-length parts");
    let html_nid = add("Empty HTML");
    w.finish().unwrap();
    let f = std::fs::read(&p).unwrap();
    let map = Map::load(&f);
    let d = map.decoded(&f);
    let (data, sub, _) = map.nodes[&nid];
    // Empty bodies are left out: libpff fails on an empty PidTagHtml.
    let body = records(&map, &d, data);
    assert!(!body.contains_key(&0x1000) && !body.contains_key(&0x1013));
    let html_pc = map.nodes[&html_nid].0;
    let r = records(&map, &d, html_pc);
    assert!(!r.contains_key(&0x1013), "empty PidTagHtml");
    assert_eq!(r[&0x1016], (0x0003, 1), "native body: plain text");
    let attachments: Vec<_> = map
        .sub_entries(&d, sub)
        .into_iter()
        .filter(|e| e.0 & 0x1F == 5)
        .collect();
    assert_eq!(attachments.len(), 3);
    for (anid, pc, _) in attachments {
        let r = records(&map, &d, pc);
        assert_eq!(r[&0x3701], (0x0102, 0), "attachment {anid:#x}: data");
        assert_eq!(r[&0x3705], (0x0003, 1), "attachment {anid:#x}: by value");
    }
    // Read back: three attachments of zero bytes, with their Content-IDs.
    let r = PstReader::open(&p).unwrap();
    let raw = r.message(nid).unwrap().raw;
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let cids: Vec<_> = m
        .attachments()
        .map(|a| {
            assert!(a.contents().is_empty());
            mail_parser::MimeHeaders::content_id(a)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        cids,
        [
            "empty1@example.com",
            "empty2@example.com",
            "empty3@example.com"
        ]
    );
}
