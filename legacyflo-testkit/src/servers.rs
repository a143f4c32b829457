//! The real servers the test command starts: Dovecot (IMAP) and SeaweedFS (S3).
//!
//! `bash scripts/test.sh` runs `scripts/test-infra.sh up`, which starts both on loopback and
//! exports `TEST_IMAP_*`, `TEST_S3_ENDPOINT` and `AWS_*`. [`imap_server`] and [`s3_server`]
//! read that environment and check that the server answers; when it does not, they **panic**
//! with a message saying how to start it, so a test that needs a real server fails instead
//! of being skipped silently.
//!
//! Besides the descriptors, this module has what tests need to prepare and poke the servers:
//! [`seed_maildir`] / [`reset_user`] write Dovecot's Maildir directly (fast: no IMAP round
//! trips), [`ImapClient`] is a tiny blocking IMAP line client for smoke tests, and
//! [`S3Server::http`] sends plain HTTP requests, signed with SigV4 (SeaweedFS checks
//! signatures against the identity of the env file).

use std::fs::{self, File, FileTimes};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use sha2::Digest as _;

const HOW_TO_START: &str = "run the tests with `bash scripts/test.sh`, which starts it";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The Dovecot test server (see `scripts/test-infra.sh`).
///
/// Users (password = name + `pw`): `alice`, `bob`, `carol@example.test`, `big`, `empty`,
/// `vault`, `src`, `dst`. Master user [`master_user`](Self::master_user): log in as
/// `alice*admin` with [`master_password`](Self::master_password). The hierarchy separator
/// is `/` (Maildir `LAYOUT=fs`); XOAUTH2/OAUTHBEARER accept HS256 JWTs signed with
/// `TEST_JWT_HS256_SECRET` whose `sub` is the user name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapServer {
    /// Host to connect to (`127.0.0.1`).
    pub host: String,
    /// Plain IMAP port (STARTTLS available).
    pub port: u16,
    /// Implicit-TLS IMAP port.
    pub tls_port: u16,
    /// PEM file of the CA that signed the server certificate (valid for `localhost` and
    /// `127.0.0.1`).
    pub ca_file: PathBuf,
    /// Directory holding one home per user: `<maildir_root>/<user>/Maildir`.
    pub maildir_root: PathBuf,
    /// Master user name (log in as `<user>*<master_user>`).
    pub master_user: String,
    /// Master user password.
    pub master_password: String,
}

impl ImapServer {
    /// `host:port` of the plain IMAP port.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a plain connection and reads the greeting.
    pub fn connect(&self) -> io::Result<ImapClient> {
        ImapClient::connect(&self.host, self.port)
    }

    /// Connects and logs in as `user` with `password` (fails on a `NO`/`BAD` answer).
    pub fn login(&self, user: &str, password: &str) -> io::Result<ImapClient> {
        let mut c = self.connect()?;
        let r = c.login(user, password)?;
        if !r.is_ok() {
            return Err(io::Error::other(format!(
                "LOGIN {user} failed: {} {}",
                r.status, r.text
            )));
        }
        Ok(c)
    }

    /// The user's Maildir (`<maildir_root>/<user>/Maildir`), which is also its INBOX.
    pub fn user_maildir(&self, user: &str) -> PathBuf {
        self.maildir_root.join(user).join("Maildir")
    }

    /// Directory of a folder in the user's Maildir (`LAYOUT=fs`: one directory level per
    /// segment, names in modified UTF-7). `[]` and `["INBOX"]` are the Maildir itself.
    pub fn folder_dir(&self, user: &str, folder: &[&str]) -> PathBuf {
        let mut p = self.user_maildir(user);
        if folder.is_empty() || folder == ["INBOX"] {
            return p;
        }
        for seg in folder {
            p.push(mutf7_encode(seg));
        }
        p
    }

    /// The IMAP (modified UTF-7, `/`-separated) name of a folder path.
    pub fn mailbox_name(folder: &[&str]) -> String {
        folder
            .iter()
            .map(|s| mutf7_encode(s))
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {host}")))
}

fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&resolve(host, port)?, CONNECT_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The Dovecot test server from `TEST_IMAP_HOST`, `TEST_IMAP_PORT`, `TEST_IMAPS_PORT`,
/// `TEST_IMAP_CA`, `TEST_IMAP_MAILDIR_ROOT`, `TEST_IMAP_MASTER_USER` and
/// `TEST_IMAP_MASTER_PASS`, after checking that it greets with `* OK`.
///
/// # Panics
/// When a variable is missing or the server does not answer: tests that need the server
/// must fail, never skip. The message says to run `bash scripts/test.sh`.
pub fn imap_server() -> ImapServer {
    const VARS: [&str; 7] = [
        "TEST_IMAP_HOST",
        "TEST_IMAP_PORT",
        "TEST_IMAPS_PORT",
        "TEST_IMAP_CA",
        "TEST_IMAP_MAILDIR_ROOT",
        "TEST_IMAP_MASTER_USER",
        "TEST_IMAP_MASTER_PASS",
    ];
    let missing: Vec<&str> = VARS
        .iter()
        .copied()
        .filter(|v| env_var(v).is_none())
        .collect();
    if !missing.is_empty() {
        panic!(
            "Dovecot test server not reachable at <unknown> ({} not set): {HOW_TO_START}",
            missing.join(", ")
        );
    }
    let get = |k: &str| env_var(k).unwrap_or_default();
    let port_of = |k: &str| -> u16 {
        get(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k}={} is not a port number: {HOW_TO_START}", get(k)))
    };
    let server = ImapServer {
        host: get("TEST_IMAP_HOST"),
        port: port_of("TEST_IMAP_PORT"),
        tls_port: port_of("TEST_IMAPS_PORT"),
        ca_file: PathBuf::from(get("TEST_IMAP_CA")),
        maildir_root: PathBuf::from(get("TEST_IMAP_MAILDIR_ROOT")),
        master_user: get("TEST_IMAP_MASTER_USER"),
        master_password: get("TEST_IMAP_MASTER_PASS"),
    };
    match server.connect() {
        Ok(c) if c.greeting().starts_with("* OK") => server,
        Ok(c) => panic!(
            "Dovecot test server not reachable at {}: unexpected greeting {:?}; {HOW_TO_START}",
            server.addr(),
            c.greeting()
        ),
        Err(e) => panic!(
            "Dovecot test server not reachable at {}: {e}; {HOW_TO_START}",
            server.addr()
        ),
    }
}

/// The S3 test server: SeaweedFS's S3 gateway (see `scripts/test-infra.sh`). It checks
/// SigV4 signatures against its one identity ([`access_key`](Self::access_key) and
/// [`secret_key`](Self::secret_key), the `AWS_*` of the env file) and the checksums sent
/// with uploads; bucket names must be valid DNS names (3-63 lower-case characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Server {
    /// Endpoint URL, e.g. `http://127.0.0.1:10900` (use path-style addressing).
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region.
    pub region: String,
}

/// An HTTP response from [`S3Server::http`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// Body (chunked transfer coding removed).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl S3Server {
    /// Host and port of the endpoint (`http://` only).
    pub fn host_port(&self) -> io::Result<(String, u16)> {
        let rest = self.endpoint.strip_prefix("http://").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("only http:// endpoints: {}", self.endpoint),
            )
        })?;
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bad port in {}", self.endpoint),
                    )
                })?;
                Ok((h.to_owned(), port))
            }
            None => Ok((authority.to_owned(), 80)),
        }
    }

    /// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole response.
    /// `path` starts with `/` (path-style: `/<bucket>/<key>`, not URI-encoded; a query
    /// such as `?uploads` may follow). The request is signed with SigV4 with
    /// [`access_key`](Self::access_key) and [`secret_key`](Self::secret_key) (change
    /// `secret_key` to see a refusal), every header field signed, the payload hashed.
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> io::Result<HttpResponse> {
        self.http_with(method, path, &[], body)
    }

    /// [`http`](Self::http) with extra header fields (e.g. an `x-amz-checksum-crc32c` to
    /// plant a stored checksum).
    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let (host, port) = self.host_port()?;
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        let path = crate::sigv4::uri_encode(raw_path, true);
        let query = crate::sigv4::canonical_query(raw_query);
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let payload = hex::encode(sha2::Sha256::digest(body));
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), format!("{host}:{port}")),
            ("x-amz-date".into(), amz_date.clone()),
            ("x-amz-content-sha256".into(), payload.clone()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let signing = crate::sigv4::Signing {
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: &self.region,
            amz_date: &amz_date,
        };
        let auth = crate::sigv4::authorization(&signing, method, &path, &query, &headers, &payload);
        let fields: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut s = connect_tcp(&host, port)?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\n{fields}User-Agent: legacyflo-testkit\r\nAccept: */*\r\n\
             Authorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        s.flush()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        parse_http(&raw)
    }
}

fn parse_http(raw: &[u8]) -> io::Result<HttpResponse> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP header"))?;
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") {
        return Err(bad(&format!("not an HTTP response: {status_line:?}")));
    }
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw.get(end + 4..).unwrap_or_default().to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = String::from_utf8_lossy(data.get(..eol)?).into_owned();
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = data.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The S3 test server from `TEST_S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
/// and `AWS_REGION` (default `us-east-1`), after checking that a signed `GET /`
/// (ListBuckets) is answered 200.
///
/// # Panics
/// When a variable is missing or the server does not answer (tests must fail, never skip).
pub fn s3_server() -> S3Server {
    const VARS: [&str; 3] = [
        "TEST_S3_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ];
    let missing: Vec<&str> = VARS
        .iter()
        .copied()
        .filter(|v| env_var(v).is_none())
        .collect();
    if !missing.is_empty() {
        panic!(
            "S3 test server (SeaweedFS) not reachable at <unknown> ({} not set): {HOW_TO_START}",
            missing.join(", ")
        );
    }
    let server = S3Server {
        endpoint: env_var("TEST_S3_ENDPOINT").unwrap_or_default(),
        access_key: env_var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        secret_key: env_var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        region: env_var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
    };
    match server.http("GET", "/", b"") {
        Ok(r) if r.status == 200 => server,
        Ok(r) => panic!(
            "S3 test server (SeaweedFS) at {} refused a signed ListBuckets with HTTP {} \
             (credentials of the env file?): {}; {HOW_TO_START}",
            server.endpoint,
            r.status,
            r.text()
        ),
        Err(e) => panic!(
            "S3 test server (SeaweedFS) not reachable at {}: {e}; {HOW_TO_START}",
            server.endpoint
        ),
    }
}

/// IMAP modified UTF-7 (RFC 3501 5.1.3) of a mailbox name segment, e.g.
/// `Entwürfe` → `Entw&APw-rfe`, `Ordner & Co` → `Ordner &- Co`.
pub fn mutf7_encode(name: &str) -> String {
    legacyflo_corpus::mutf7_encode(name)
}

/// Writes messages straight into `user`'s Maildir under `folder` (path segments, `[]` or
/// `["INBOX"]` for INBOX; created with parents as needed). Each message is
/// `(raw bytes, Maildir flag letters such as "FS", mtime = INTERNALDATE in unix seconds)`.
/// Files go to `cur/` named so that Dovecot assigns UIDs in the given order (also across
/// several calls for the same folder), then the user's home is `chown -R vmail:vmail`.
///
/// # Panics
/// On any I/O error or when `chown` fails (the test setup is broken).
pub fn seed_maildir(
    server: &ImapServer,
    user: &str,
    folder: &[&str],
    msgs: &[(Vec<u8>, &str, i64)],
) {
    let dir = server.folder_dir(user, folder);
    let root = server.user_maildir(user);
    for d in [&root, &dir] {
        for sub in ["cur", "new", "tmp"] {
            let p = d.join(sub);
            fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        }
    }
    let cur = dir.join("cur");
    let start = fs::read_dir(&cur)
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("read {}: {e}", cur.display()));
    for (i, (raw, flags, mtime)) in msgs.iter().enumerate() {
        let n = start + i;
        let mut letters: Vec<char> = flags.chars().collect();
        letters.sort_unstable();
        letters.dedup();
        let letters: String = letters.into_iter().collect();
        let name = format!(
            "{}.M{n:07}P1.seed,S={}:2,{letters}",
            1_600_000_000 + n,
            raw.len()
        );
        let path = cur.join(name);
        let mut f =
            File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        f.write_all(raw)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let t = if *mtime >= 0 {
            UNIX_EPOCH + Duration::from_secs(mtime.unsigned_abs())
        } else {
            UNIX_EPOCH
        };
        f.set_times(FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
    }
    chown_vmail(&server.maildir_root.join(user));
}

/// Seeds `user`'s Maildir with `msgs`, each into the folder it names (see
/// [`seed_maildir`]), with the Maildir flag letters `flags` and its internal date as the
/// file's mtime. The bytes are stored as they are: pass CRLF text for IMAP comparisons.
pub fn seed_messages(
    server: &ImapServer,
    user: &str,
    msgs: &[legacyflo_core::Message],
    flags: &str,
) {
    type Seed<'a> = Vec<(Vec<u8>, &'a str, i64)>;
    let mut by_folder: std::collections::BTreeMap<&legacyflo_core::FolderPath, Seed> =
        std::collections::BTreeMap::new();
    for m in msgs {
        by_folder.entry(&m.folder).or_default().push((
            m.raw.to_vec(),
            flags,
            m.internal_date.map(|d| d.timestamp()).unwrap_or(0),
        ));
    }
    for (f, seed) in &by_folder {
        let segs: Vec<&str> = f.segments().iter().map(String::as_str).collect();
        seed_maildir(server, user, &segs, seed);
    }
}

fn chown_vmail(path: &std::path::Path) {
    let out = Command::new("chown")
        .arg("-R")
        .arg("vmail:vmail")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run chown -R vmail:vmail {}: {e}", path.display()));
    if !out.status.success() {
        panic!(
            "chown -R vmail:vmail {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Deletes `user`'s whole home (Maildir, indexes, subscriptions), so that a test starts
/// from an empty mailbox. Dovecot recreates INBOX on the next login. Do this before any
/// connection of the test logs in as `user`.
///
/// # Panics
/// When the directory exists and cannot be removed.
pub fn reset_user(server: &ImapServer, user: &str) {
    let home = server.maildir_root.join(user);
    match fs::remove_dir_all(&home) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", home.display()),
    }
}

/// Quotes a string for IMAP (`"…"` with `\` and `"` escaped).
pub fn imap_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The answer to one IMAP command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapResponse {
    /// Untagged (`* …`) and continuation (`+ …`) lines, without CRLF; literals are inlined
    /// (lossy UTF-8).
    pub untagged: Vec<String>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The rest of the tagged line.
    pub text: String,
}

impl ImapResponse {
    /// Whether the status is `OK`.
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// Whether some untagged line contains `needle`.
    pub fn has_untagged(&self, needle: &str) -> bool {
        self.untagged.iter().any(|l| l.contains(needle))
    }
}

/// A tiny blocking IMAP client for smoke tests (plain TCP, one command at a time).
#[derive(Debug)]
pub struct ImapClient {
    reader: BufReader<TcpStream>,
    greeting: String,
    tag: u32,
}

impl ImapClient {
    /// Connects and reads the greeting line.
    pub fn connect(host: &str, port: u16) -> io::Result<ImapClient> {
        let stream = connect_tcp(host, port)?;
        let mut reader = BufReader::new(stream);
        let greeting = read_line(&mut reader)?;
        Ok(ImapClient {
            reader,
            greeting,
            tag: 0,
        })
    }

    /// The server greeting (e.g. `* OK [CAPABILITY …] Dovecot ready.`).
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Sends `<tag> <command>` and reads until the tagged answer. A continuation request
    /// (`+ …`) is recorded and answered with an empty line (which is what a failed SASL
    /// exchange needs); send literals with [`append`](Self::append) instead.
    pub fn command(&mut self, command: &str) -> io::Result<ImapResponse> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let stream = self.reader.get_mut();
        stream.write_all(format!("{tag} {command}\r\n").as_bytes())?;
        stream.flush()?;
        self.read_until_tagged(&tag)
    }

    fn read_until_tagged(&mut self, tag: &str) -> io::Result<ImapResponse> {
        let mut untagged = Vec::new();
        loop {
            let line = read_line(&mut self.reader)?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return Ok(ImapResponse {
                    untagged,
                    status: status.to_ascii_uppercase(),
                    text: text.to_owned(),
                });
            }
            if line.starts_with('+') {
                let stream = self.reader.get_mut();
                stream.write_all(b"\r\n")?;
                stream.flush()?;
            }
            untagged.push(line);
        }
    }

    /// `LOGIN user password` (both quoted).
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<ImapResponse> {
        self.command(&format!(
            "LOGIN {} {}",
            imap_quote(user),
            imap_quote(password)
        ))
    }

    /// `APPEND mailbox (flags) {n+}` with a LITERAL+ literal (`mailbox` already mUTF-7;
    /// `flags` like `\Seen \Flagged`, may be empty).
    pub fn append(&mut self, mailbox: &str, flags: &str, data: &[u8]) -> io::Result<ImapResponse> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let stream = self.reader.get_mut();
        stream.write_all(
            format!(
                "{tag} APPEND {} ({flags}) {{{}+}}\r\n",
                imap_quote(mailbox),
                data.len()
            )
            .as_bytes(),
        )?;
        stream.write_all(data)?;
        stream.write_all(b"\r\n")?;
        stream.flush()?;
        self.read_until_tagged(&tag)
    }

    /// `LOGOUT`, ignoring errors.
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// Reads one response line (without CRLF), inlining `{n}` literals.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line: Vec<u8> = Vec::new();
    loop {
        let mut chunk = Vec::new();
        let n = reader.read_until(b'\n', &mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the IMAP server",
            ));
        }
        if chunk.ends_with(b"\r\n") {
            chunk.truncate(chunk.len() - 2);
        } else if chunk.ends_with(b"\n") {
            chunk.truncate(chunk.len() - 1);
        }
        let literal = literal_size(&chunk);
        line.extend_from_slice(&chunk);
        match literal {
            Some(size) => {
                let mut buf = vec![0u8; size];
                reader.read_exact(&mut buf)?;
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&buf);
            }
            None => return Ok(String::from_utf8_lossy(&line).into_owned()),
        }
    }
}

/// The size of a literal announced at the end of a line (`… {123}`).
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body.get(open + 1..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sizes() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_size(b"* OK done"), None);
        assert_eq!(literal_size(b"* x {}"), None);
    }

    #[test]
    fn http_parsing() {
        let r = parse_http(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        let r = parse_http(b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nabc").unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "abc"));
    }

    #[test]
    fn quoting_and_names() {
        assert_eq!(imap_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            ImapServer::mailbox_name(&["Ünïcødé", "日本語", "Ordner & Co"]),
            "&ANw-n&AO8-c&APg-d&AOk-/&ZeVnLIqe-/Ordner &- Co"
        );
    }
}
