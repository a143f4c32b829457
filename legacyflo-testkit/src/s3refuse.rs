//! [`RefusingS3`]: a local HTTP server answering S3 requests with the refusals AWS
//! documents, on demand: the real test server (SeaweedFS) checks signatures and checksums,
//! but cannot be made to refuse every part, deny one action on one bucket, or refuse an
//! access key by name. The error bodies follow the S3 API reference, "Error responses":
//! `<Error><Code>…</Code><Message>…</Message><RequestId>…</RequestId></Error>` with the
//! documented status (HEAD answers carry no body).
//!
//! Behaviour, by request:
//! - any request signed with access key [`RefusingS3::WRONG_KEY`]: 403 `InvalidAccessKeyId`;
//! - `HEAD /<bucket>` (HeadBucket): 404 for [`RefusingS3::MISSING_BUCKET`], else 200;
//! - `PUT /<bucket>/<key>` (PutObject) on [`RefusingS3::DENY_PUT_BUCKET`]: 403 `AccessDenied`;
//!   elsewhere 200 with an `ETag`;
//! - `DELETE /<bucket>/<key>` (DeleteObject): 204;
//! - `POST /<bucket>/<key>?uploads` (CreateMultipartUpload): 200 with an `UploadId`;
//! - `PUT /<bucket>/<key>?partNumber=N&uploadId=…` (UploadPart): 400 `BadDigest` (the part
//!   did not match its checksum);
//! - `DELETE /<bucket>/<key>?uploadId=…` (AbortMultipartUpload): 204, counted;
//! - `GET /<bucket>?uploads` (ListMultipartUploads): 200, an empty list.
//!
//! Requests are served on 127.0.0.1 (path-style addressing), one thread per connection,
//! keep-alive honoured; the server stops when the value is dropped.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A running refusing S3 server.
#[derive(Debug)]
pub struct RefusingS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    aborts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RefusingS3 {
    /// Access key refused as unknown.
    pub const WRONG_KEY: &'static str = "AKIAWRONGKEY0000000";
    /// Bucket that does not exist.
    pub const MISSING_BUCKET: &'static str = "missing-bucket";
    /// Bucket whose policy denies `s3:PutObject`.
    pub const DENY_PUT_BUCKET: &'static str = "deny-put-bucket";

    /// Starts the server on an ephemeral loopback port.
    pub fn start() -> io::Result<RefusingS3> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        listener.set_nonblocking(true)?;
        let aborts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let a = aborts.clone();
        crate::s3mem::accept_loop(listener, stop.clone(), move |sock| {
            let _ = serve(sock, &a);
        });
        Ok(RefusingS3 {
            endpoint,
            aborts,
            stop,
        })
    }

    /// AbortMultipartUpload requests received.
    pub fn aborts(&self) -> usize {
        self.aborts.load(Ordering::SeqCst)
    }
}

impl Drop for RefusingS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn error_body(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"
    )
}

fn serve(sock: TcpStream, aborts: &AtomicUsize) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    let mut out = sock.try_clone()?;
    let mut rd = BufReader::new(sock);
    loop {
        let Some(crate::http1::Head {
            method,
            target,
            headers,
        }) = crate::http1::read_head(&mut rd)?
        else {
            return Ok(());
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let len: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        io::copy(&mut (&mut rd).take(len), &mut io::sink())?;
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let mut segs = path.trim_start_matches('/').splitn(2, '/');
        let bucket = segs.next().unwrap_or_default();
        let key = segs.next().unwrap_or_default();
        let auth = header("authorization").unwrap_or_default();
        let (status, body, extra): (u16, String, String) = if auth
            .contains(&format!("Credential={}/", RefusingS3::WRONG_KEY))
        {
            (
                403,
                error_body(
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                ),
                String::new(),
            )
        } else if bucket == RefusingS3::MISSING_BUCKET {
            (
                404,
                error_body("NoSuchBucket", "The specified bucket does not exist"),
                String::new(),
            )
        } else {
            match (method.as_str(), key.is_empty()) {
                ("HEAD", true) => (200, String::new(), String::new()),
                ("GET", true) if query.contains("uploads") => (
                    200,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult><Bucket>{bucket}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>"
                    ),
                    String::new(),
                ),
                ("POST", false) if query.contains("uploads") => (
                    200,
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
                    ),
                    String::new(),
                ),
                ("PUT", false) if query.contains("uploadId") => (
                    400,
                    error_body(
                        "BadDigest",
                        "The CRC32C you specified did not match the calculated checksum.",
                    ),
                    String::new(),
                ),
                ("DELETE", false) if query.contains("uploadId") => {
                    aborts.fetch_add(1, Ordering::SeqCst);
                    (204, String::new(), String::new())
                }
                ("PUT", false) if bucket == RefusingS3::DENY_PUT_BUCKET => (
                    403,
                    error_body("AccessDenied", "Access Denied"),
                    String::new(),
                ),
                ("PUT", false) => (
                    200,
                    String::new(),
                    "ETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\n".to_string(),
                ),
                ("DELETE", false) => (204, String::new(), String::new()),
                _ => (
                    400,
                    error_body("InvalidRequest", "not served by the test server"),
                    String::new(),
                ),
            }
        };
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Error",
        };
        let body = if method == "HEAD" || status == 204 {
            String::new()
        } else {
            body
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/xml\r\n"
        };
        write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nx-amz-request-id: 4442587FB7D0A2F9\r\n{ctype}{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        out.flush()?;
    }
}
