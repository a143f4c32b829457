//! [`MemS3`]: a local S3 server for multipart uploads that injects faults a real server
//! cannot be made to produce on demand (the tests' real S3 server is SeaweedFS).
//!
//! It answers the calls the S3 sinks make, as S3 does (path-style addressing): HeadBucket,
//! CreateBucket, PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2,
//! CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload,
//! AbortMultipartUpload and ListMultipartUploads. It
//! - verifies the `x-amz-checksum-crc32c` of every part and object (400 `BadDigest` on a
//!   mismatch) and counts parts sent without one ([`Stats::parts_without_crc32c`]);
//! - checks a completion as S3 does: every listed part exists with that ETag and CRC32C,
//!   and every part but the last is at least 5 MiB (`InvalidPart`, `EntityTooSmall`); it
//!   answers the composite CRC32C;
//! - in [`Mode::Discard`] keeps only the size and checksums of parts (objects put with
//!   `PutObject` are kept), so uploads of any size cost no memory;
//! - fails the n-th request of an action on demand ([`MemS3::fail`]);
//! - counts the parts in flight at once ([`Stats::max_parts_in_flight`]);
//! - holds objects whose stored checksum is wrong on demand ([`MemS3::plant`]).
//!
//! One thread per connection; the server stops when the value is dropped.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

mod handle;
use handle::handle;

/// What happens to the bytes of parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything is kept; completed objects can be read back.
    Keep,
    /// Parts are checked and dropped; a completed multipart object has a size and a
    /// checksum but no bytes (GetObject answers 501).
    Discard,
}

/// Counters of what the server saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// UploadPart requests stored.
    pub parts: usize,
    /// UploadPart requests without `x-amz-checksum-crc32c`.
    pub parts_without_crc32c: usize,
    /// Requests refused with `BadDigest`.
    pub bad_digests: usize,
    /// Most UploadPart requests being received at once.
    pub max_parts_in_flight: usize,
    /// Completed multipart uploads.
    pub completed: usize,
    /// Aborted multipart uploads.
    pub aborted: usize,
    /// Part bytes received.
    pub part_bytes: u64,
}

#[derive(Debug)]
struct Obj {
    data: Option<Vec<u8>>,
    size: u64,
    crc: Option<String>,
    etag: String,
    meta: Vec<(String, String)>,
}

#[derive(Debug)]
struct Part {
    data: Option<Vec<u8>>,
    size: u64,
    crc: u32,
    etag: String,
}

#[derive(Debug)]
struct Upload {
    bucket: String,
    key: String,
    meta: Vec<(String, String)>,
    parts: BTreeMap<i32, Part>,
}

#[derive(Debug)]
struct Fault {
    action: String,
    nth: usize,
    status: u16,
    code: String,
}

#[derive(Debug, Default)]
struct Store {
    buckets: HashSet<String>,
    objects: BTreeMap<(String, String), Obj>,
    uploads: BTreeMap<String, Upload>,
    next: u64,
    stats: Stats,
    faults: Vec<Fault>,
    counts: BTreeMap<String, usize>,
}

/// A running server.
#[derive(Debug)]
pub struct MemS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    mode: Mode,
    store: Arc<Mutex<Store>>,
    stop: Arc<AtomicBool>,
    part_delay_ms: Arc<AtomicU64>,
}

type Shared = (Mode, Arc<Mutex<Store>>, Arc<AtomicUsize>, Arc<AtomicU64>);

impl MemS3 {
    /// Starts a server on an ephemeral loopback port holding the (empty) `buckets`.
    pub fn start(mode: Mode, buckets: &[&str]) -> io::Result<MemS3> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        listener.set_nonblocking(true)?;
        let store = Arc::new(Mutex::new(Store {
            buckets: buckets.iter().map(|b| b.to_string()).collect(),
            ..Store::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let part_delay_ms = Arc::new(AtomicU64::new(0));
        let shared: Shared = (
            mode,
            store.clone(),
            Arc::new(AtomicUsize::new(0)),
            part_delay_ms.clone(),
        );
        accept_loop(listener, stop.clone(), move |sock| {
            let _ = serve(sock, &shared);
        });
        Ok(MemS3 {
            endpoint,
            mode,
            store,
            stop,
            part_delay_ms,
        })
    }

    /// Makes every UploadPart answer `ms` milliseconds after its body arrived (a slower
    /// link, so that parts overlap).
    pub fn set_part_delay_ms(&self, ms: u64) {
        self.part_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Makes the `nth` (1-based, counted from now) request of `action` (e.g.
    /// `UploadPart`, `PutObject`, `CompleteMultipartUpload`) fail with `status` and the
    /// error `code` (`InternalError` and 5xx are temporary for the client, `AccessDenied`
    /// is not).
    pub fn fail(&self, action: &str, nth: usize, status: u16, code: &str) {
        let mut st = self.store.lock().unwrap();
        let seen = st.counts.get(action).copied().unwrap_or(0);
        st.faults.push(Fault {
            action: action.to_string(),
            nth: seen + nth,
            status,
            code: code.to_string(),
        });
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.store.lock().unwrap().stats.clone()
    }

    /// Keys of the objects in `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let st = self.store.lock().unwrap();
        st.objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The bytes of an object (`None` when missing or discarded).
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let st = self.store.lock().unwrap();
        st.objects
            .get(&(bucket.to_string(), key.to_string()))
            .and_then(|o| o.data.clone())
    }

    /// Size and CRC32C (composite `…-N` for multipart objects) of an object.
    pub fn object_info(&self, bucket: &str, key: &str) -> Option<(u64, Option<String>)> {
        let st = self.store.lock().unwrap();
        st.objects
            .get(&(bucket.to_string(), key.to_string()))
            .map(|o| (o.size, o.crc.clone()))
    }

    /// Stores `data` as `s3://bucket/key` with `stored_crc32c` (base64) as its stored
    /// checksum, whatever the bytes: an object corrupted at rest, which a real server
    /// cannot be made to hold (it verifies checksums on upload). The bucket is created.
    pub fn plant(&self, bucket: &str, key: &str, data: &[u8], stored_crc32c: &str) {
        let mut st = self.store.lock().unwrap();
        st.buckets.insert(bucket.to_string());
        let etag = format!("\"{:08x}{:08x}\"", crc32c::crc32c(data), data.len());
        st.objects.insert(
            (bucket.to_string(), key.to_string()),
            Obj {
                data: Some(data.to_vec()),
                size: data.len() as u64,
                crc: Some(stored_crc32c.to_string()),
                etag,
                meta: Vec::new(),
            },
        );
    }

    /// Keys of the unfinished multipart uploads (all buckets).
    pub fn open_uploads(&self) -> Vec<String> {
        let st = self.store.lock().unwrap();
        st.uploads.values().map(|u| u.key.clone()).collect()
    }
}

/// Serves each connection accepted on `listener` (non-blocking) with `handle` on its own
/// thread, until `stop` is set.
pub(crate) fn accept_loop<F>(listener: TcpListener, stop: Arc<AtomicBool>, handle: F)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((sock, _)) => {
                    let handle = handle.clone();
                    std::thread::spawn(move || handle(sock));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(_) => break,
            }
        }
    });
}

impl Drop for MemS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn crc_b64(c: u32) -> String {
    B64.encode(c.to_be_bytes())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>0000</RequestId></Error>"
        )
        .into_bytes(),
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

struct Request {
    method: String,
    bucket: String,
    key: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }
    fn meta(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("x-amz-meta-")
                    .map(|m| (m.to_string(), v.clone()))
            })
            .collect()
    }
    fn action(&self) -> &'static str {
        match (self.method.as_str(), self.key.is_empty()) {
            ("HEAD", true) => "HeadBucket",
            ("PUT", true) => "CreateBucket",
            ("GET", true) if self.has("uploads") => "ListMultipartUploads",
            ("GET", true) => "ListObjectsV2",
            ("POST", false) if self.has("uploads") => "CreateMultipartUpload",
            ("POST", false) if self.has("uploadId") => "CompleteMultipartUpload",
            ("PUT", false) if self.has("uploadId") => "UploadPart",
            ("GET", false) if self.has("uploadId") => "ListParts",
            ("DELETE", false) if self.has("uploadId") => "AbortMultipartUpload",
            ("PUT", false) => "PutObject",
            ("GET", false) => "GetObject",
            ("HEAD", false) => "HeadObject",
            ("DELETE", false) => "DeleteObject",
            _ => "Unknown",
        }
    }
}

fn decode(s: &str) -> String {
    urlencoding::decode(s).map_or_else(|_| s.to_string(), |c| c.into_owned())
}

/// A request body: payload (empty when not kept), its CRC32C and size, trailers.
type Body = (Vec<u8>, u32, u64, Vec<(String, String)>);

/// The body: plain, or `aws-chunked` (chunks, then trailers such as the checksum).
/// Returns the payload (unless `keep` is false: then only its CRC32C and size are kept)
/// and the trailing headers.
fn read_body(rd: &mut BufReader<TcpStream>, req: &Request, keep: bool) -> io::Result<Body> {
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let chunked = req
        .header("content-encoding")
        .is_some_and(|v| v.contains("aws-chunked"));
    let mut data = Vec::new();
    let mut crc = 0u32;
    let mut size = 0u64;
    let mut take = |buf: &[u8], data: &mut Vec<u8>| {
        crc = crc32c::crc32c_append(crc, buf);
        size += buf.len() as u64;
        if keep {
            data.extend_from_slice(buf);
        }
    };
    let mut trailers = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    if !chunked {
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            rd.read_exact(&mut buf[..n])?;
            take(&buf[..n], &mut data);
            left -= n as u64;
        }
        return Ok((data, crc, size, trailers));
    }
    loop {
        let mut line = String::new();
        rd.read_line(&mut line)?;
        let hex = line.trim().split(';').next().unwrap_or("0");
        let mut n = u64::from_str_radix(hex, 16).unwrap_or(0);
        if n == 0 {
            loop {
                let mut t = String::new();
                if rd.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = t.trim().split_once(':') {
                    trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            return Ok((data, crc, size, trailers));
        }
        while n > 0 {
            let m = usize::try_from(n.min(buf.len() as u64)).unwrap_or(buf.len());
            rd.read_exact(&mut buf[..m])?;
            take(&buf[..m], &mut data);
            n -= m as u64;
        }
        let mut crlf = String::new();
        rd.read_line(&mut crlf)?;
    }
}

fn serve(sock: TcpStream, shared: &Shared) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    let mut out = sock.try_clone()?;
    let mut rd = BufReader::with_capacity(64 * 1024, sock);
    loop {
        let Some(crate::http1::Head {
            method,
            target,
            headers,
        }) = crate::http1::read_head(&mut rd)?
        else {
            return Ok(());
        };
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let mut segs = path.trim_start_matches('/').splitn(2, '/');
        let bucket = decode(segs.next().unwrap_or_default());
        let key = decode(segs.next().unwrap_or_default());
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let req = Request {
            method,
            bucket,
            key,
            query,
            headers,
        };
        if req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let action = req.action();
        let is_part = action == "UploadPart";
        let (mode, store, in_flight, delay) = shared;
        if is_part {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let mut st = store.lock().unwrap();
            st.stats.max_parts_in_flight = st.stats.max_parts_in_flight.max(now);
        }
        let keep = !(is_part && *mode == Mode::Discard);
        let body = read_body(&mut rd, &req, keep);
        if is_part {
            let ms = delay.load(Ordering::SeqCst);
            if ms > 0 {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let (data, crc, size, trailers) = body?;
        let reply = {
            let mut st = store.lock().unwrap();
            handle(&mut st, &req, action, data, crc, size, &trailers)
        };
        let body = if req.method == "HEAD" || reply.status == 204 {
            Vec::new()
        } else {
            reply.body
        };
        let mut head = format!(
            "HTTP/1.1 {} X\r\nx-amz-request-id: 0000\r\nContent-Length: {}\r\n",
            reply.status,
            if req.method == "HEAD" {
                reply
                    .headers
                    .iter()
                    .find(|(k, _)| k == "Content-Length")
                    .map_or(0, |(_, v)| v.parse().unwrap_or(0))
            } else {
                body.len()
            }
        );
        for (k, v) in &reply.headers {
            if k != "Content-Length" {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if !body.is_empty() && !reply.headers.iter().any(|(k, _)| k == "Content-Type") {
            head.push_str("Content-Type: application/xml\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&body)?;
        out.flush()?;
    }
}
