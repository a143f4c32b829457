//! The ZIP records the sink writes (APPNOTE 6.3.x): local headers, central-directory
//! records, and the end records (with ZIP64 when needed).

use std::io::{self, Read, Seek, SeekFrom, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use flate2::Compression;
use flate2::write::DeflateEncoder;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const LOCATOR_SIG: u32 = 0x0706_4b50;
/// Length of the end-of-central-directory record without comment.
pub(crate) const EOCD_LEN: u64 = 22;
const EOCD64_LEN: u64 = 56;
const LOCATOR_LEN: u64 = 20;
const U32_MAX: u64 = 0xFFFF_FFFF;
const U16_MAX: u64 = 0xFFFF;
/// General-purpose flag bit 11: names and comments are UTF-8.
const FLAG_UTF8: u16 = 0x0800;
/// Made by: UNIX (3), spec 4.5.
const MADE_BY: u16 = (3 << 8) | 45;
/// `-rw-r--r--` regular file, in the high half of the external attributes.
const EXTERNAL_ATTRS: u32 = 0o100_644 << 16;
const EXTENDED_TIMESTAMP: u16 = 0x5455;
const ZIP64_EXTRA: u16 = 0x0001;

/// One compressed entry, ready to be written.
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub comment: Vec<u8>,
    pub method: u16,
    pub crc: u32,
    pub data: Vec<u8>,
    pub size: u64,
    pub date: Option<DateTime<Utc>>,
}

impl Entry {
    /// Compresses `raw` with deflate (stored when that does not make it smaller).
    pub(crate) fn new(
        name: String,
        comment: String,
        raw: &[u8],
        date: Option<DateTime<Utc>>,
    ) -> io::Result<Entry> {
        let mut enc =
            DeflateEncoder::new(Vec::with_capacity(raw.len() / 2 + 64), Compression::fast());
        enc.write_all(raw)?;
        let deflated = enc.finish()?;
        let (method, data) = if deflated.len() < raw.len() {
            (8, deflated)
        } else {
            (0, raw.to_vec())
        };
        Ok(Entry {
            name: name.into_bytes(),
            comment: comment.into_bytes(),
            method,
            crc: crc32fast::hash(raw),
            data,
            size: raw.len() as u64,
            date,
        })
    }

    fn csize(&self) -> u64 {
        self.data.len() as u64
    }

    fn dos_time(&self) -> (u16, u16) {
        dos_date_time(self.date)
    }

    fn unix_mtime(&self) -> Option<i32> {
        self.date.and_then(|d| i32::try_from(d.timestamp()).ok())
    }

    /// The local header (to be followed by `data`).
    pub(crate) fn local_header(&self) -> Vec<u8> {
        let zip64 = self.size >= U32_MAX || self.csize() >= U32_MAX;
        let mut extra = Vec::new();
        if zip64 {
            put16(&mut extra, ZIP64_EXTRA);
            put16(&mut extra, 16);
            put64(&mut extra, self.size);
            put64(&mut extra, self.csize());
        }
        if let Some(t) = self.unix_mtime() {
            put_timestamp(&mut extra, t);
        }
        let (time, date) = self.dos_time();
        let mut h = Vec::with_capacity(30 + self.name.len() + extra.len());
        put32(&mut h, LOCAL_SIG);
        put16(&mut h, if zip64 { 45 } else { 20 });
        put16(&mut h, FLAG_UTF8);
        put16(&mut h, self.method);
        put16(&mut h, time);
        put16(&mut h, date);
        put32(&mut h, self.crc);
        put32(
            &mut h,
            if zip64 {
                U32_MAX as u32
            } else {
                self.csize() as u32
            },
        );
        put32(
            &mut h,
            if zip64 {
                U32_MAX as u32
            } else {
                self.size as u32
            },
        );
        put16(&mut h, self.name.len() as u16);
        put16(&mut h, extra.len() as u16);
        h.extend_from_slice(&self.name);
        h.extend_from_slice(&extra);
        h
    }

    /// The central-directory record of the entry whose local header is at `offset`.
    pub(crate) fn central_record(&self, offset: u64) -> Vec<u8> {
        let mut z64 = Vec::new();
        if self.size >= U32_MAX {
            put64(&mut z64, self.size);
        }
        if self.csize() >= U32_MAX {
            put64(&mut z64, self.csize());
        }
        if offset >= U32_MAX {
            put64(&mut z64, offset);
        }
        let mut extra = Vec::new();
        if !z64.is_empty() {
            put16(&mut extra, ZIP64_EXTRA);
            put16(&mut extra, z64.len() as u16);
            extra.extend_from_slice(&z64);
        }
        if let Some(t) = self.unix_mtime() {
            put_timestamp(&mut extra, t);
        }
        let (time, date) = self.dos_time();
        let cap = |v: u64| {
            if v >= U32_MAX {
                U32_MAX as u32
            } else {
                v as u32
            }
        };
        let mut r = Vec::with_capacity(46 + self.name.len() + extra.len() + self.comment.len());
        put32(&mut r, CENTRAL_SIG);
        put16(&mut r, MADE_BY);
        put16(&mut r, if z64.is_empty() { 20 } else { 45 });
        put16(&mut r, FLAG_UTF8);
        put16(&mut r, self.method);
        put16(&mut r, time);
        put16(&mut r, date);
        put32(&mut r, self.crc);
        put32(&mut r, cap(self.csize()));
        put32(&mut r, cap(self.size));
        put16(&mut r, self.name.len() as u16);
        put16(&mut r, extra.len() as u16);
        put16(&mut r, self.comment.len() as u16);
        put16(&mut r, 0); // disk number start
        put16(&mut r, 0); // internal attributes
        put32(&mut r, EXTERNAL_ATTRS);
        put32(&mut r, cap(offset));
        r.extend_from_slice(&self.name);
        r.extend_from_slice(&extra);
        r.extend_from_slice(&self.comment);
        r
    }
}

/// The records after a central directory of `entries` records and `cd_len` bytes at
/// `cd_offset`: ZIP64 end record and locator when a value overflows, then the classic end
/// record.
pub(crate) fn end_records(entries: u64, cd_offset: u64, cd_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((EOCD64_LEN + LOCATOR_LEN + EOCD_LEN) as usize);
    let zip64 = entries >= U16_MAX || cd_len >= U32_MAX || cd_offset >= U32_MAX;
    if zip64 {
        let eocd64_at = cd_offset + cd_len;
        put32(&mut out, EOCD64_SIG);
        put64(&mut out, EOCD64_LEN - 12);
        put16(&mut out, MADE_BY);
        put16(&mut out, 45);
        put32(&mut out, 0);
        put32(&mut out, 0);
        put64(&mut out, entries);
        put64(&mut out, entries);
        put64(&mut out, cd_len);
        put64(&mut out, cd_offset);
        put32(&mut out, LOCATOR_SIG);
        put32(&mut out, 0);
        put64(&mut out, eocd64_at);
        put32(&mut out, 1);
    }
    let cap16 = |v: u64| {
        if v >= U16_MAX {
            U16_MAX as u16
        } else {
            v as u16
        }
    };
    let cap32 = |v: u64| {
        if v >= U32_MAX {
            U32_MAX as u32
        } else {
            v as u32
        }
    };
    put32(&mut out, EOCD_SIG);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, cap16(entries));
    put16(&mut out, cap16(entries));
    put32(&mut out, cap32(cd_len));
    put32(&mut out, cap32(cd_offset));
    put16(&mut out, 0);
    out
}

/// The comments of the central-directory records in `cd`, in order; `Err` when `cd` is not
/// a sequence of well-formed records.
pub(crate) fn central_comments(cd: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < cd.len() {
        let rec = cd
            .get(p..p + 46)
            .ok_or("truncated central directory record")?;
        if get32(rec, 0) != CENTRAL_SIG {
            return Err(format!("no central directory record at byte {p}"));
        }
        let name = usize::from(get16(rec, 28));
        let extra = usize::from(get16(rec, 30));
        let comment = usize::from(get16(rec, 32));
        let start = p + 46 + name + extra;
        let c = cd
            .get(start..start + comment)
            .ok_or("truncated central directory record")?;
        out.push(c);
        p = start + comment;
    }
    Ok(out)
}

/// The number of entries of the archive in `file`, from its end records (the archive must
/// have no archive comment, as the sink writes it).
pub(crate) fn entry_count<F: Read + Seek>(file: &mut F) -> io::Result<u64> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "no ZIP end record");
    let len = file.seek(SeekFrom::End(0))?;
    let at = len.checked_sub(EOCD_LEN).ok_or_else(bad)?;
    let mut eocd = [0u8; EOCD_LEN as usize];
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(&mut eocd)?;
    if get32(&eocd, 0) != EOCD_SIG {
        return Err(bad());
    }
    let n = u64::from(get16(&eocd, 10));
    if n != U16_MAX {
        return Ok(n);
    }
    let loc_at = at.checked_sub(LOCATOR_LEN).ok_or_else(bad)?;
    let mut loc = [0u8; LOCATOR_LEN as usize];
    file.seek(SeekFrom::Start(loc_at))?;
    file.read_exact(&mut loc)?;
    if get32(&loc, 0) != LOCATOR_SIG {
        return Err(bad());
    }
    let mut e64 = [0u8; EOCD64_LEN as usize];
    file.seek(SeekFrom::Start(get64(&loc, 8)))?;
    file.read_exact(&mut e64)?;
    if get32(&e64, 0) != EOCD64_SIG {
        return Err(bad());
    }
    Ok(get64(&e64, 32))
}

/// MS-DOS time and date of `date` (UTC, clamped to 1980–2107); 1980-01-01 00:00 for none.
fn dos_date_time(date: Option<DateTime<Utc>>) -> (u16, u16) {
    let Some(d) = date else {
        return (0, (1 << 5) | 1);
    };
    if d.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    if d.year() > 2107 {
        return ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31);
    }
    let time = ((d.hour() as u16) << 11) | ((d.minute() as u16) << 5) | ((d.second() as u16) / 2);
    let date = (((d.year() - 1980) as u16) << 9) | ((d.month() as u16) << 5) | d.day() as u16;
    (time, date)
}

fn put_timestamp(out: &mut Vec<u8>, t: i32) {
    put16(out, EXTENDED_TIMESTAMP);
    put16(out, 5);
    out.push(1); // modification time present
    out.extend_from_slice(&t.to_le_bytes());
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn get16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn get32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn get64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_dates() {
        let d = DateTime::parse_from_rfc3339("2024-11-21T10:30:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let (t, dd) = dos_date_time(Some(d));
        assert_eq!(t >> 11, 10);
        assert_eq!((t >> 5) & 0x3f, 30);
        assert_eq!((t & 0x1f) * 2, 8);
        assert_eq!((dd >> 9) + 1980, 2024);
        assert_eq!((dd >> 5) & 0xf, 11);
        assert_eq!(dd & 0x1f, 21);
        assert_eq!(dos_date_time(None), (0, 33));
    }

    #[test]
    fn central_comments_parse_what_we_write() {
        let e = Entry::new("INBOX/000001.eml".into(), "lf1 h=1".into(), b"hello", None).unwrap();
        let mut cd = e.central_record(0);
        cd.extend(e.central_record(1 << 33));
        let c = central_comments(&cd).unwrap();
        assert_eq!(c, vec![&b"lf1 h=1"[..], &b"lf1 h=1"[..]]);
        assert!(central_comments(&cd[..50]).is_err());
    }
}
