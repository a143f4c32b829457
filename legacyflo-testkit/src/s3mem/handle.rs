//! The answers of [`MemS3`](super::MemS3), action by action.

use std::collections::BTreeMap;

use super::{Obj, Part, Reply, Request, Store, Upload, crc_b64, error, xml_escape};

pub(super) fn handle(
    st: &mut Store,
    req: &Request,
    action: &str,
    data: Vec<u8>,
    crc: u32,
    size: u64,
    trailers: &[(String, String)],
) -> Reply {
    let seen = {
        let c = st.counts.entry(action.to_string()).or_insert(0);
        *c += 1;
        *c
    };
    if let Some(i) = st
        .faults
        .iter()
        .position(|f| f.action == action && f.nth == seen)
    {
        let f = st.faults.remove(i);
        return error(f.status, &f.code, "injected by the test server");
    }
    if action != "CreateBucket" && !st.buckets.contains(&req.bucket) {
        return error(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    let sent_crc = req
        .header("x-amz-checksum-crc32c")
        .map(str::to_string)
        .or_else(|| {
            trailers
                .iter()
                .find(|(k, _)| k == "x-amz-checksum-crc32c")
                .map(|(_, v)| v.clone())
        });
    let bkey = (req.bucket.clone(), req.key.clone());
    match action {
        "HeadBucket" => Reply::ok(Vec::new()),
        "CreateBucket" => {
            st.buckets.insert(req.bucket.clone());
            Reply::ok(Vec::new())
        }
        "PutObject" => {
            if let Some(s) = &sent_crc
                && *s != crc_b64(crc)
            {
                st.stats.bad_digests += 1;
                return error(
                    400,
                    "BadDigest",
                    "The CRC32C you specified did not match the calculated checksum.",
                );
            }
            let etag = format!("\"{crc:08x}{size:08x}\"");
            st.objects.insert(
                bkey,
                Obj {
                    data: Some(data),
                    size,
                    crc: Some(crc_b64(crc)),
                    etag: etag.clone(),
                    meta: req.meta(),
                },
            );
            Reply::ok(Vec::new())
                .header("ETag", etag)
                .header("x-amz-checksum-crc32c", crc_b64(crc))
        }
        "GetObject" | "HeadObject" => match st.objects.get(&bkey) {
            None if action == "HeadObject" => error(404, "NotFound", ""),
            None => error(404, "NoSuchKey", "The specified key does not exist."),
            Some(o) => {
                let mut r = Reply::ok(Vec::new())
                    .header("ETag", o.etag.clone())
                    .header("Content-Length", o.size.to_string())
                    .header("Content-Type", "application/octet-stream");
                if let Some(c) = &o.crc
                    && req.header("x-amz-checksum-mode").is_some()
                {
                    r = r.header("x-amz-checksum-crc32c", c.clone());
                }
                for (k, v) in &o.meta {
                    r = r.header(&format!("x-amz-meta-{k}"), v.clone());
                }
                if action == "GetObject" {
                    match &o.data {
                        Some(d) => r.body = d.clone(),
                        None => return error(501, "NotImplemented", "the bytes were discarded"),
                    }
                }
                r
            }
        },
        "DeleteObject" => {
            st.objects.remove(&bkey);
            Reply {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            }
        }
        "ListObjectsV2" => {
            let prefix = req.q("prefix").unwrap_or_default();
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>{}</Name><Prefix>{}</Prefix><IsTruncated>false</IsTruncated>",
                xml_escape(&req.bucket),
                xml_escape(prefix)
            );
            let mut n = 0;
            for ((b, k), o) in &st.objects {
                if *b == req.bucket && k.starts_with(prefix) {
                    n += 1;
                    x.push_str(&format!(
                        "<Contents><Key>{}</Key><Size>{}</Size><ETag>{}</ETag></Contents>",
                        xml_escape(k),
                        o.size,
                        xml_escape(&o.etag)
                    ));
                }
            }
            x.push_str(&format!("<KeyCount>{n}</KeyCount></ListBucketResult>"));
            Reply::ok(x)
        }
        "CreateMultipartUpload" => {
            st.next += 1;
            let id = format!("upload-{:06}", st.next);
            st.uploads.insert(
                id.clone(),
                Upload {
                    bucket: req.bucket.clone(),
                    key: req.key.clone(),
                    meta: req.meta(),
                    parts: BTreeMap::new(),
                },
            );
            Reply::ok(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                xml_escape(&req.bucket),
                xml_escape(&req.key)
            ))
        }
        "UploadPart" => {
            let id = req.q("uploadId").unwrap_or_default().to_string();
            let number: i32 = req
                .q("partNumber")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if !st.uploads.contains_key(&id) {
                return error(404, "NoSuchUpload", "The specified upload does not exist.");
            }
            match &sent_crc {
                None => st.stats.parts_without_crc32c += 1,
                Some(s) if *s != crc_b64(crc) => {
                    st.stats.bad_digests += 1;
                    return error(
                        400,
                        "BadDigest",
                        "The CRC32C you specified did not match the calculated checksum.",
                    );
                }
                Some(_) => {}
            }
            st.next += 1;
            let etag = format!("\"{crc:08x}{size:08x}{:06x}\"", st.next);
            st.stats.parts += 1;
            st.stats.part_bytes += size;
            let keep = !data.is_empty() || size == 0;
            if let Some(u) = st.uploads.get_mut(&id) {
                u.parts.insert(
                    number,
                    Part {
                        data: keep.then_some(data),
                        size,
                        crc,
                        etag: etag.clone(),
                    },
                );
            }
            Reply::ok(Vec::new())
                .header("ETag", etag)
                .header("x-amz-checksum-crc32c", crc_b64(crc))
        }
        "ListParts" => {
            let id = req.q("uploadId").unwrap_or_default();
            let Some(u) = st.uploads.get(id) else {
                return error(404, "NoSuchUpload", "The specified upload does not exist.");
            };
            let marker: i32 = req
                .q("part-number-marker")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId><PartNumberMarker>{marker}</PartNumberMarker><MaxParts>1000</MaxParts>",
                xml_escape(&u.bucket),
                xml_escape(&u.key)
            );
            let page: Vec<(&i32, &Part)> = u.parts.range(marker + 1..).take(1000).collect();
            let truncated = u.parts.range(marker + 1..).count() > page.len();
            for (n, p) in &page {
                x.push_str(&format!(
                    "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag><Size>{}</Size><ChecksumCRC32C>{}</ChecksumCRC32C></Part>",
                    xml_escape(&p.etag),
                    p.size,
                    crc_b64(p.crc)
                ));
            }
            let next = page.last().map_or(marker, |(n, _)| **n);
            x.push_str(&format!(
                "<NextPartNumberMarker>{next}</NextPartNumberMarker><IsTruncated>{truncated}</IsTruncated></ListPartsResult>"
            ));
            Reply::ok(x)
        }
        "AbortMultipartUpload" => {
            let id = req.q("uploadId").unwrap_or_default();
            if st.uploads.remove(id).is_none() {
                return error(404, "NoSuchUpload", "The specified upload does not exist.");
            }
            st.stats.aborted += 1;
            Reply {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            }
        }
        "ListMultipartUploads" => {
            let prefix = req.q("prefix").unwrap_or_default();
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult><Bucket>{}</Bucket><IsTruncated>false</IsTruncated>",
                xml_escape(&req.bucket)
            );
            for (id, u) in &st.uploads {
                if u.bucket == req.bucket && u.key.starts_with(prefix) {
                    x.push_str(&format!(
                        "<Upload><Key>{}</Key><UploadId>{id}</UploadId></Upload>",
                        xml_escape(&u.key)
                    ));
                }
            }
            x.push_str("</ListMultipartUploadsResult>");
            Reply::ok(x)
        }
        "CompleteMultipartUpload" => complete(st, req, &data),
        _ => error(400, "InvalidRequest", "not served by the test server"),
    }
}

/// The `(number, ETag, CRC32C)` of each `<Part>` of a CompleteMultipartUpload body.
fn listed_parts(body: &str) -> Vec<(i32, String, Option<String>)> {
    let tag = |s: &str, t: &str| -> Option<String> {
        let open = format!("<{t}>");
        let close = format!("</{t}>");
        let a = s.find(&open)? + open.len();
        let b = s[a..].find(&close)? + a;
        Some(s[a..b].replace("&quot;", "\"").replace("&amp;", "&"))
    };
    body.split("<Part>")
        .skip(1)
        .map(|p| {
            (
                tag(p, "PartNumber")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                tag(p, "ETag").unwrap_or_default(),
                tag(p, "ChecksumCRC32C"),
            )
        })
        .collect()
}

fn complete(st: &mut Store, req: &Request, body: &[u8]) -> Reply {
    let id = req.q("uploadId").unwrap_or_default().to_string();
    let Some(u) = st.uploads.get(&id) else {
        return error(404, "NoSuchUpload", "The specified upload does not exist.");
    };
    let listed = listed_parts(&String::from_utf8_lossy(body));
    if listed.is_empty() {
        return error(400, "MalformedXML", "no parts");
    }
    let mut raw = Vec::new();
    let mut data = Some(Vec::new());
    let mut size = 0u64;
    for (i, (n, etag, crc)) in listed.iter().enumerate() {
        let Some(p) = u.parts.get(n) else {
            return error(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found.",
            );
        };
        if p.etag.trim_matches('"') != etag.trim_matches('"')
            || crc.as_ref().is_some_and(|c| *c != crc_b64(p.crc))
        {
            return error(
                400,
                "InvalidPart",
                "A part's ETag or checksum does not match.",
            );
        }
        if i + 1 < listed.len() && p.size < 5 * 1024 * 1024 {
            return error(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            );
        }
        raw.extend_from_slice(&p.crc.to_be_bytes());
        size += p.size;
        match (&mut data, &p.data) {
            (Some(d), Some(pd)) => d.extend_from_slice(pd),
            _ => data = None,
        }
    }
    let composite = format!("{}-{}", crc_b64(crc32c::crc32c(&raw)), listed.len());
    let etag = format!("\"{:08x}-{}\"", crc32c::crc32c(&raw), listed.len());
    let (bucket, key, meta) = (u.bucket.clone(), u.key.clone(), u.meta.clone());
    st.uploads.remove(&id);
    st.stats.completed += 1;
    st.objects.insert(
        (bucket.clone(), key.clone()),
        Obj {
            data,
            size,
            crc: Some(composite.clone()),
            etag: etag.clone(),
            meta,
        },
    );
    Reply::ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag><ChecksumCRC32C>{composite}</ChecksumCRC32C></CompleteMultipartUploadResult>",
        xml_escape(&bucket),
        xml_escape(&key),
        xml_escape(&etag)
    ))
}
