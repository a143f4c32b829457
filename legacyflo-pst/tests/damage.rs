//! One flipped byte in each kind of block and page, in a PST we write and in one Outlook
//! wrote: the message that needs it is reported with the damage named (block or page id,
//! offset, the check that failed), every other message reads byte-exact, and a damaged
//! header or B-tree root refuses the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::ndb_map::{Kind, Map, Page};
use common::read_every_message;
use legacyflo_pst::{MessageMeta, PstReader, PstWriter, WriterOptions};

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    map: Map,
    baseline: BTreeMap<u32, Vec<u8>>,
    /// Block id -> the nodes that use it.
    owners: HashMap<u64, BTreeSet<u32>>,
}

impl Fixture {
    fn new(name: &str, bytes: Vec<u8>) -> Fixture {
        let map = Map::load(&bytes);
        let baseline = read_every_message(bytes.clone())
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.unwrap_or_else(|e| panic!("{name}: undamaged {k:#x}: {e}")),
                )
            })
            .collect();
        let mut owners: HashMap<u64, BTreeSet<u32>> = HashMap::new();
        for &nid in map.nodes.keys() {
            for (bid, _) in map.node_blocks(&bytes, nid) {
                owners.entry(bid & !1).or_default().insert(nid);
            }
        }
        Fixture {
            name: name.to_string(),
            bytes,
            map,
            baseline,
            owners,
        }
    }

    fn is_message(&self, nid: u32) -> bool {
        self.baseline.contains_key(&nid)
    }

    /// Flips byte `at`, reads everything: the messages in `hit` fail with an error
    /// containing every string of `mention`; every other message is byte-exact.
    fn check(&self, case: &str, at: u64, hit: &BTreeSet<u32>, mention: &[String]) {
        let mut d = self.bytes.clone();
        d[at as usize] ^= 0x20;
        let ctx = format!("{}: {case} (byte {at:#x})", self.name);
        let got = read_every_message(d).unwrap_or_else(|e| panic!("{ctx}: file refused: {e}"));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            self.baseline.keys().collect::<Vec<_>>(),
            "{ctx}: listed messages"
        );
        assert!(!hit.is_empty(), "{ctx}: nothing to hit");
        for (nid, want) in &self.baseline {
            match (&got[nid], hit.contains(nid)) {
                (Err(e), true) => {
                    for m in mention {
                        assert!(
                            e.contains(m.as_str()),
                            "{ctx}: error of {nid:#x} lacks {m:?}: {e}"
                        );
                    }
                }
                (Ok(_), true) => panic!("{ctx}: message {nid:#x} read despite the damage"),
                (Err(e), false) => panic!("{ctx}: message {nid:#x} failed: {e}"),
                (Ok(raw), false) => assert!(raw == want, "{ctx}: message {nid:#x} changed"),
            }
        }
    }

    /// The messages that use block `bid`, if only messages use it.
    fn message_owners(&self, bid: u64) -> Option<BTreeSet<u32>> {
        let o = self.owners.get(&(bid & !1))?;
        o.iter().all(|n| self.is_message(*n)).then(|| o.clone())
    }

    /// One byte in the data of one block of each kind a message uses: that message (and
    /// any other sharing the block) is reported. Returns the kinds tested.
    fn blocks_of_each_kind(&self) -> BTreeSet<Kind> {
        let mut done: BTreeMap<Kind, usize> = BTreeMap::new();
        for &nid in self.baseline.keys() {
            for (bid, kind) in self.map.node_blocks(&self.bytes, nid) {
                if done.get(&kind).is_some_and(|n| *n >= 3) {
                    continue;
                }
                let Some(hit) = self.message_owners(bid) else {
                    continue;
                };
                let (ib, cb) = self.map.blocks[&(bid & !1)];
                // Internal blocks: a byte of the first entry; data blocks: the middle.
                let off = if kind == Kind::Data {
                    u64::from(cb) / 2
                } else {
                    9
                };
                self.check(
                    &format!("{kind:?} block {bid:#x}"),
                    ib + off,
                    &hit,
                    &[
                        format!("block {:#x} at offset {ib:#x}", bid & !1),
                        "CRC".into(),
                    ],
                );
                *done.entry(kind).or_default() += 1;
            }
        }
        done.into_keys().collect()
    }

    /// Each field of a data block's trailer: cb, signature, block id.
    fn trailer_fields(&self) {
        let (&nid, _) = self.baseline.iter().next().unwrap();
        let (bid, _) = self.map.node_blocks(&self.bytes, nid)[0];
        let hit = self.message_owners(bid).unwrap();
        let (ib, cb) = self.map.blocks[&(bid & !1)];
        let end = ib + (u64::from(cb) + 16).div_ceil(64) * 64;
        for (field, at, what) in [
            ("cb", end - 16, "its trailer says"),
            ("wSig", end - 14, "signature"),
            ("bid", end - 7, "its trailer names block"),
        ] {
            self.check(
                &format!("trailer {field} of block {bid:#x}"),
                at,
                &hit,
                &[
                    format!("block {:#x} at offset {ib:#x}", bid & !1),
                    what.into(),
                ],
            );
        }
    }

    /// Pages below the root whose entries lead only to messages: the messages indexed
    /// below them are reported, naming the page. Returns (tree, level) pairs tested.
    fn pages(&self) -> BTreeSet<(&'static str, u8)> {
        let mut done = BTreeSet::new();
        for (tree, pages) in [("node", &self.map.nbt), ("block", &self.map.bbt)] {
            for p in pages.iter().filter(|p| !p.root) {
                if done.contains(&(tree, p.level)) {
                    continue;
                }
                let Some(hit) = self.page_hits(tree, p) else {
                    continue;
                };
                self.check(
                    &format!("{tree} B-tree page {:#x} level {}", p.bid, p.level),
                    p.ib + 3,
                    &hit,
                    &[
                        format!("{tree} B-tree page {:#x} at offset {:#x}", p.bid, p.ib),
                        "CRC".into(),
                    ],
                );
                if done.iter().all(|d: &(&str, u8)| d.0 != tree) {
                    // The trailer, which the CRC does not cover: each field is checked.
                    for (field, at, what) in [
                        ("ptype", 496, "page type"),
                        ("wSig", 498, "signature"),
                        ("dwCRC", 501, "CRC"),
                        ("bid", 505, "its trailer names page"),
                    ] {
                        self.check(
                            &format!("trailer {field} of {tree} B-tree page {:#x}", p.bid),
                            p.ib + at,
                            &hit,
                            &[
                                format!("{tree} B-tree page {:#x} at offset {:#x}", p.bid, p.ib),
                                what.into(),
                            ],
                        );
                    }
                }
                done.insert((tree, p.level));
            }
        }
        done
    }

    /// The messages a damaged page `p` makes unreadable, if it indexes nothing else the
    /// reader needs (folder-associated messages, NID type 8, are not read).
    fn page_hits(&self, tree: &str, p: &Page) -> Option<BTreeSet<u32>> {
        let fai = |n: u32| n & 0x1F == 8;
        let mut hit = BTreeSet::new();
        for &k in &p.leaf_keys {
            let owners: BTreeSet<u32> = if tree == "node" {
                [k as u32].into()
            } else {
                self.owners.get(&(k & !1))?.clone()
            };
            for n in owners {
                if self.is_message(n) {
                    hit.insert(n);
                } else if !fai(n) {
                    return None;
                }
            }
        }
        (!hit.is_empty()).then_some(hit)
    }

    /// The header and both root pages: the file is refused, naming the damage.
    fn roots(&self) {
        for (what, at) in [
            ("header".to_string(), 100u64),
            (
                format!("node B-tree page {:#x}", self.map.nbt[0].bid),
                self.map.nbt[0].ib + 3,
            ),
            (
                format!("block B-tree page {:#x}", self.map.bbt[0].bid),
                self.map.bbt[0].ib + 3,
            ),
        ] {
            let mut d = self.bytes.clone();
            d[at as usize] ^= 0x20;
            match read_every_message(d) {
                Err(e) => assert!(
                    e.contains(&what) && e.contains("CRC"),
                    "{}: {what}: {e}",
                    self.name
                ),
                Ok(_) => panic!("{}: damaged {what} accepted", self.name),
            }
        }
    }
}

/// A PST with messages of every shape: deep node and block B-trees (intermediate pages
/// below the root), XBLOCK and XXBLOCK data trees, SLBLOCK and SIBLOCK subnode trees.
fn written() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shapes.pst");
    let mut w = PstWriter::create(&p, WriterOptions::default()).unwrap();
    let meta = MessageMeta::default();
    for m in common::corpus::corpus() {
        let segs: Vec<&str> = m.folder.iter().map(String::as_str).collect();
        let f = w.folder(&segs).unwrap();
        w.add_message(f, &m.raw, &meta).unwrap();
    }
    let inbox = w.folder(&["Inbox"]).unwrap();
    for i in 0..420 {
        let raw = format!(
            "From: a{i}@example.com\r\nTo: b@example.com\r\nSubject: small {i}\r\n\
             Message-ID: <s{i}@example.com>\r\n\r\nbody {i}\r\n"
        );
        w.add_message(inbox, raw.as_bytes(), &meta).unwrap();
    }
    // 9 MB: more than an XBLOCK's 1021 blocks, so an XXBLOCK.
    let big = common::corpus::bytes(9, 9 * 1024 * 1024);
    w.add_message(inbox, &with_attachments(&[("huge.bin", &big)]), &meta)
        .unwrap();
    // 350 attachments: more subnodes than one SLBLOCK holds (340), so an SIBLOCK.
    let small: Vec<(String, Vec<u8>)> = (0..350)
        .map(|i| (format!("a{i}.txt"), format!("attachment {i}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = small
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    w.add_message(inbox, &with_attachments(&refs), &meta)
        .unwrap();
    w.finish().unwrap();
    std::fs::read(&p).unwrap()
}

fn with_attachments(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut raw = String::from(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: attachments\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n",
    );
    for (name, data) in parts {
        raw.push_str(&format!(
            "--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; \
             filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            common::corpus::b64(data)
        ));
    }
    raw.push_str("--B--\r\n");
    raw.into_bytes()
}

#[test]
fn damage_in_a_written_pst_is_reported_per_message() {
    let f = Fixture::new("written", written());
    let kinds = f.blocks_of_each_kind();
    assert_eq!(
        kinds,
        [
            Kind::Data,
            Kind::XBlock,
            Kind::XXBlock,
            Kind::SlBlock,
            Kind::SiBlock
        ]
        .into_iter()
        .collect(),
        "block kinds hit"
    );
    f.trailer_fields();
    let pages = f.pages();
    assert_eq!(
        pages,
        [("block", 0), ("block", 1), ("node", 0), ("node", 1)]
            .into_iter()
            .collect(),
        "pages hit (leaf and intermediate, both trees)"
    );
    f.roots();
}

#[test]
fn damage_in_an_outlook_written_pst_is_reported_per_message() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/pst/pstconv__outlook.pst"
    );
    let f = Fixture::new("pstconv__outlook.pst", std::fs::read(p).unwrap());
    assert_eq!(f.baseline.len(), 3);
    let kinds = f.blocks_of_each_kind();
    assert_eq!(kinds, [Kind::Data, Kind::SlBlock].into_iter().collect());
    f.trailer_fields();
    // Its block B-tree leaves all index folder blocks too; its node B-tree's last leaf
    // indexes only messages (and folder-associated ones, which are not read).
    let pages = f.pages();
    assert_eq!(pages, [("node", 0)].into_iter().collect());
    f.roots();
}

/// What the checks are for: without the CRC check a flipped data byte changes a message
/// silently.
#[test]
fn without_the_crc_check_a_flip_goes_unnoticed() {
    let f = Fixture::new("written", written());
    // A data block of an attachment's value (after its XBLOCK): its bytes, not structure.
    let (nid, bid) = f
        .baseline
        .keys()
        .find_map(|&n| {
            let b = f.map.node_blocks(&f.bytes, n);
            let x = b.iter().position(|(_, k)| *k == Kind::XBlock)?;
            Some((n, b.get(x + 1)?.0))
        })
        .unwrap();
    let want = &f.baseline[&nid];
    let (ib, cb) = f.map.blocks[&bid];
    let mut d = f.bytes.clone();
    d[(ib + u64::from(cb) / 2) as usize] ^= 0x20;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("flipped.pst");
    std::fs::write(&p, &d).unwrap();
    let unchecked =
        PstReader::open_with(&p, legacyflo_pst::ReadOptions { verify_crc: false }).unwrap();
    match unchecked.message(nid) {
        Ok(m) => assert!(&m.raw != want, "the flip did not change the message"),
        Err(e) => panic!("a structural check caught the flip: {e}"),
    }
    let checked = PstReader::open(&p).unwrap();
    match checked.message(nid) {
        Err(e) => assert!(e.to_string().contains("CRC"), "{e}"),
        Ok(_) => panic!("the checked reader read the flipped message"),
    }
}

/// A damaged contents table: the folder's messages are found through the node B-tree
/// (their parent is the folder), in NID order, and all read byte-exact; a damaged
/// hierarchy table: the subfolders are found the same way.
#[test]
fn damaged_folder_tables_fall_back_to_the_node_btree() {
    let f = Fixture::new("written", written());
    let r = PstReader::from_bytes(f.bytes.clone()).unwrap();
    let folders = r.folders().unwrap();
    let inbox = folders.iter().find(|x| x.path == ["Inbox"]).unwrap();
    assert!(inbox.contents_error.is_none() && inbox.subfolders_error.is_none());
    let mut want_ids = r.message_ids(inbox).unwrap();
    want_ids.sort_unstable();
    let want_paths: Vec<_> = folders.iter().map(|x| x.path.clone()).collect();

    for (table, nid_type) in [("contents", 0x0E), ("hierarchy", 0x0D)] {
        let table_nid = (inbox.node_id & !0x1F) | nid_type;
        let (bid, _, _) = f.map.nodes[&table_nid];
        let (ib, cb) = f.map.blocks[&(bid & !1)];
        let mut d = f.bytes.clone();
        d[(ib + u64::from(cb) / 2) as usize] ^= 0x20;
        let r = PstReader::from_bytes(d).unwrap();
        let folders = r.folders().unwrap();
        let paths: Vec<_> = folders.iter().map(|x| x.path.clone()).collect();
        assert_eq!(paths, want_paths, "{table}: folders");
        let got = folders.iter().find(|x| x.path == ["Inbox"]).unwrap();
        let err = if table == "contents" {
            got.contents_error.as_deref()
        } else {
            got.subfolders_error.as_deref()
        };
        let err = err.unwrap_or_else(|| panic!("{table}: no error reported"));
        assert!(
            err.contains(&format!("block {:#x}", bid & !1)) && err.contains("CRC"),
            "{err}"
        );
        assert_eq!(got.message_count, want_ids.len(), "{table}: count");
        let ids = r.message_ids(got).unwrap();
        if table == "contents" {
            assert_eq!(ids, want_ids, "messages from the node B-tree, in NID order");
            assert_eq!(got.stored_count, Some(want_ids.len()));
        }
        for nid in ids {
            assert!(
                r.message(nid).unwrap().raw == f.baseline[&nid],
                "{table}: {nid:#x}"
            );
        }
    }
}
