//! Requests: a type plus parameters, validated into what the engine runs.

mod cloud;
mod imap_limits;
mod params;
mod s3;
mod types;

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

pub use cloud::{CloudAuth, CloudCredentials, parse_credentials};
pub use imap_limits::ImapLimits;
pub use params::{Field, Params, Secret};
pub use s3::S3Settings;
pub use types::{AuthMethod, DestKind, FileFormat, ImapPreset, RequestType, SourceKind, Support};

use crate::filter::Filter;
use crate::location::Location;
use crate::message::FolderPath;

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.describe(), self.message)
    }
}

/// Every problem found in a request; never empty when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestErrors(pub Vec<FieldError>);

impl RequestErrors {
    fn push(&mut self, field: Field, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    /// Whether `field` has an error.
    pub fn has(&self, field: Field) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for RequestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for RequestErrors {}

/// How an IMAP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    StartTls,
    /// No TLS at all; only when asked for.
    None,
}

impl ImapTls {
    /// Parses `implicit`, `starttls` or `none` (case-insensitive; `ssl`/`tls` mean implicit,
    /// `plain`/`plaintext` mean none).
    pub fn parse(s: &str) -> Option<ImapTls> {
        match s.trim().to_ascii_lowercase().as_str() {
            "implicit" | "ssl" | "tls" => Some(ImapTls::Implicit),
            "starttls" => Some(ImapTls::StartTls),
            "none" | "plain" | "plaintext" => Some(ImapTls::None),
            _ => None,
        }
    }

    /// The usual port: 993 for implicit TLS, 143 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            ImapTls::Implicit => 993,
            ImapTls::StartTls | ImapTls::None => 143,
        }
    }
}

/// An IMAP account: server, port, login and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapEndpoint {
    /// Host name or IP.
    pub server: String,
    /// Port.
    pub port: u16,
    /// User ID as given.
    pub user: String,
    /// Domain, if given.
    pub domain: Option<String>,
    /// Password, when the auth method uses one.
    pub password: Option<Secret>,
    /// Transport security; `None` means by port: implicit TLS, STARTTLS on 143.
    pub tls: Option<ImapTls>,
    /// CA certificate(s) to trust instead of the public roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any server certificate (explicit opt-in, testing only).
    pub insecure: bool,
    /// Admin (master) user logging in on behalf of [`login`](Self::login)
    /// (`AUTHENTICATE PLAIN` with the mailbox as authorization identity); the password is
    /// then the admin's.
    pub admin: Option<String>,
    /// Bounds of the connection (command deadline, message size, line length).
    pub limits: ImapLimits,
}

impl ImapEndpoint {
    /// The login name: `user@domain` when a domain is given and the user has no `@`,
    /// else the user as given.
    pub fn login(&self) -> String {
        match &self.domain {
            Some(d) if !self.user.contains('@') => format!("{}@{}", self.user, d),
            _ => self.user.clone(),
        }
    }
}

/// What the request reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// An IMAP mailbox.
    Imap {
        /// The provider flavour.
        preset: ImapPreset,
        /// The account.
        endpoint: ImapEndpoint,
        /// XOAUTH2 credentials, for the OAuth request types (GMAILOAUTH-*, O365-*).
        oauth: Option<CloudAuth>,
    },
    /// A mailbox file or tree.
    File {
        /// Its format.
        format: FileFormat,
        /// Where it is.
        location: Location,
    },
    /// A cloud API mailbox (Gmail API, Graph, EWS).
    Api {
        /// Which API.
        kind: SourceKind,
        /// User ID.
        user: String,
        /// Domain.
        domain: Option<String>,
        /// Credentials and URLs; always there for the Gmail API and Graph, for EWS only
        /// when OAuth is used.
        auth: Option<CloudAuth>,
        /// EWS only: the password of Basic auth (when no credentials file is given).
        password: Option<Secret>,
        /// EWS only: the endpoint, `--source-api-url` as given or
        /// `https://{--source-server}/EWS/Exchange.asmx`.
        ews_url: Option<String>,
    },
    /// Not a mailbox (peripheral request types).
    Other,
}

/// What the request writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestSpec {
    /// A data file or tree.
    File {
        /// Its format.
        format: FileFormat,
        /// Where it goes (for ZIP and PST, the data file itself; the content list sits
        /// beside it).
        location: Location,
    },
    /// A mailbox reached over IMAP (vault).
    Imap {
        /// The provider flavour.
        preset: ImapPreset,
        /// The account.
        endpoint: ImapEndpoint,
        /// The folder under which the source's hierarchy is recreated (root when empty).
        folder: FolderPath,
    },
    /// A Microsoft 365 mailbox through Graph.
    Graph {
        /// User ID.
        user: String,
        /// Domain.
        domain: Option<String>,
    },
    /// Not a mailbox.
    Other,
}

/// Folder names that must not be used as a destination folder (the service's rule).
pub const RESERVED_DEST_FOLDERS: &[&str] =
    &["Drafts", "Trash", "Spam", "Chat", "Quarantine", "Archive"];

/// A validated request, ready for the engine.
#[derive(Clone, Debug)]
pub struct Request {
    /// Its type.
    pub request_type: &'static RequestType,
    /// What it reads.
    pub source: SourceSpec,
    /// What it writes.
    pub dest: DestSpec,
    /// Which messages.
    pub filter: Filter,
    /// How to reach S3 for the request's `s3://` locations.
    pub s3: S3Settings,
    /// The parameters it was made from (secrets are not among them).
    pub params: Params,
}

/// Where secrets come from; the default reads the process environment and files.
pub trait SecretLookup {
    /// The value of environment variable `name`.
    fn env(&self, name: &str) -> Option<String>;
    /// The content of the file at `path`.
    fn file(&self, path: &Path) -> std::io::Result<String>;
}

/// Reads secrets from the process environment and the file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemSecrets;

impl SecretLookup for SystemSecrets {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

impl Request {
    /// Validates `params` (which must include [`Field::Type`]) with secrets from the
    /// environment and files.
    pub fn from_params(params: &Params) -> Result<Request, RequestErrors> {
        Request::from_params_with(params, &SystemSecrets)
    }

    /// Validates `params`, reading secrets through `secrets`. Every problem is reported,
    /// each naming its field.
    pub fn from_params_with(
        params: &Params,
        secrets: &dyn SecretLookup,
    ) -> Result<Request, RequestErrors> {
        let mut errs = RequestErrors::default();
        let Some(type_name) = params.get(Field::Type) else {
            errs.push(Field::Type, "missing; run `legacyflo types` for the list");
            return Err(errs);
        };
        let Some(rt) = RequestType::find(type_name) else {
            errs.push(
                Field::Type,
                format!("unknown request type `{type_name}`; run `legacyflo types` for the list"),
            );
            return Err(errs);
        };
        let filter = parse_filter(params, &mut errs);
        let source = parse_source(rt, params, secrets, &mut errs);
        let dest = parse_dest(rt, params, &source, secrets, &mut errs);
        let s3 = S3Settings::parse(params, &mut errs);
        if errs.0.is_empty() {
            Ok(Request {
                request_type: rt,
                source,
                dest,
                filter,
                s3,
                params: params.clone(),
            })
        } else {
            Err(errs)
        }
    }

    /// A key naming this request's checkpoint state: the type plus a hash of where it reads,
    /// where it writes and its filter. Secrets do not enter it.
    pub fn state_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.request_type.name.as_bytes());
        for (f, v) in self.params.iter() {
            if !f.is_secret_reference() && !f.is_tuning() {
                h.update(f.key().as_bytes());
                h.update([0]);
                h.update(v.as_bytes());
                h.update([0]);
            }
        }
        let digest = hex::encode(h.finalize());
        format!(
            "{}-{}",
            self.request_type.name.to_ascii_lowercase(),
            &digest[..16]
        )
    }
}

fn parse_date(params: &Params, field: Field, errs: &mut RequestErrors) -> Option<NaiveDate> {
    let v = params.get(field)?;
    let ok_shape = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) if ok_shape => Some(d),
        _ => {
            errs.push(field, format!("`{v}` is not a date in YYYY-MM-DD form"));
            None
        }
    }
}

fn parse_filter(params: &Params, errs: &mut RequestErrors) -> Filter {
    let since = parse_date(params, Field::Since, errs);
    let before = parse_date(params, Field::Before, errs);
    if let (Some(s), Some(b)) = (since, before)
        && s >= b
    {
        errs.push(
            Field::Before,
            format!("must be later than Since ({s}); the window is since <= date < before"),
        );
    }
    let folder = params.get(Field::Folder).and_then(|f| {
        if f.contains('|') || f.contains('"') {
            errs.push(Field::Folder, "must not contain `|` or `\"`");
            return None;
        }
        let p = FolderPath::parse(f, '/');
        (!p.is_root()).then_some(p)
    });
    Filter {
        since,
        before,
        folder,
    }
}

fn require<'p>(
    params: &'p Params,
    field: Field,
    why: &str,
    errs: &mut RequestErrors,
) -> Option<&'p str> {
    let v = params.get(field);
    if v.is_none() {
        errs.push(field, format!("missing; {why}"));
    }
    v
}

fn parse_port(params: &Params, field: Field, default: u16, errs: &mut RequestErrors) -> u16 {
    match params.get(field) {
        None => default,
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                errs.push(field, format!("`{v}` is not a port number (1-65535)"));
                default
            }
        },
    }
}

/// The TLS fields of one side: mode, CA file (must exist), insecure flag.
fn parse_tls(
    params: &Params,
    fields: (Field, Field, Field),
    errs: &mut RequestErrors,
) -> (Option<ImapTls>, Option<std::path::PathBuf>, bool) {
    let (tls_f, ca_f, insecure_f) = fields;
    let tls = params.get(tls_f).and_then(|v| {
        let t = ImapTls::parse(v);
        if t.is_none() {
            errs.push(
                tls_f,
                format!("`{v}` is not one of implicit, starttls, none"),
            );
        }
        t
    });
    let ca = params.get(ca_f).map(std::path::PathBuf::from);
    if let Some(p) = ca.as_ref().filter(|p| !p.is_file()) {
        errs.push(ca_f, format!("`{}` is not a readable file", p.display()));
    }
    let insecure = match params
        .get(insecure_f)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false" | "0" | "no") => false,
        Some("true" | "1" | "yes") => true,
        Some(other) => {
            errs.push(insecure_f, format!("`{other}` is not true or false"));
            false
        }
    };
    (tls, ca, insecure)
}

fn read_secret(
    params: &Params,
    env_field: Field,
    file_field: Field,
    secrets: &dyn SecretLookup,
    errs: &mut RequestErrors,
) -> Option<Secret> {
    if let Some(name) = params.get(env_field) {
        return match secrets.env(name) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                errs.push(
                    env_field,
                    format!("environment variable `{name}` is not set or empty"),
                );
                None
            }
        };
    }
    if let Some(path) = params.get(file_field) {
        return match secrets.file(Path::new(path)) {
            Ok(v) => {
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    errs.push(file_field, format!("file `{path}` is empty"));
                    None
                } else {
                    Some(Secret::new(v))
                }
            }
            Err(e) => {
                errs.push(file_field, format!("cannot read `{path}`: {e}"));
                None
            }
        };
    }
    errs.push(
        env_field,
        format!(
            "missing password; give {} or {}",
            env_field.flag(),
            file_field.flag()
        ),
    );
    None
}

fn parse_source(
    rt: &RequestType,
    params: &Params,
    secrets: &dyn SecretLookup,
    errs: &mut RequestErrors,
) -> SourceSpec {
    match rt.source {
        SourceKind::Imap(preset) => {
            let server = params
                .get(Field::SourceServer)
                .or(preset.default_server())
                .map(str::to_string);
            if server.is_none() {
                errs.push(
                    Field::SourceServer,
                    "missing; the IMAP server host name or IP",
                );
            }
            let user = require(params, Field::SourceUser, "the mailbox user", errs);
            let password = match rt.auth {
                AuthMethod::Password => read_secret(
                    params,
                    Field::SourcePasswordEnv,
                    Field::SourcePasswordFile,
                    secrets,
                    errs,
                ),
                _ => None,
            };
            let oauth = cloud::uses_credentials(rt.auth)
                .then(|| cloud::parse_cloud_auth(rt.auth, params, secrets, errs))
                .flatten();
            let (tls, ca_file, insecure) = parse_tls(
                params,
                (Field::SourceTls, Field::SourceCaFile, Field::SourceInsecure),
                errs,
            );
            let default_port = tls.map_or(993, ImapTls::default_port);
            let port = parse_port(params, Field::SourcePort, default_port, errs);
            SourceSpec::Imap {
                preset,
                endpoint: ImapEndpoint {
                    server: server.unwrap_or_default(),
                    port,
                    user: user.unwrap_or_default().to_string(),
                    domain: params.get(Field::SourceDomain).map(str::to_string),
                    password,
                    tls,
                    ca_file,
                    insecure,
                    admin: params
                        .get(Field::SourceAdminUser)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string),
                    limits: imap_limits::parse_limits(params, &imap_limits::SOURCE, errs),
                },
                oauth,
            }
        }
        SourceKind::File(format) => {
            let Some(url) = require(
                params,
                Field::SourceUrl,
                "the input file or directory",
                errs,
            ) else {
                return SourceSpec::Other;
            };
            let Some(location) = Location::parse(url) else {
                errs.push(
                    Field::SourceUrl,
                    format!("`{url}` is not a path, file:// or s3:// URL"),
                );
                return SourceSpec::Other;
            };
            if let Location::Local(p) = &location {
                if !p.exists() {
                    errs.push(
                        Field::SourceUrl,
                        format!("`{}` does not exist", p.display()),
                    );
                } else if format == FileFormat::Maildir && !p.is_dir() {
                    errs.push(
                        Field::SourceUrl,
                        format!("`{}` is not a Maildir directory", p.display()),
                    );
                } else if matches!(format, FileFormat::Pst | FileFormat::EmlZip) && p.is_dir() {
                    errs.push(
                        Field::SourceUrl,
                        format!("`{}` is a directory, not a file", p.display()),
                    );
                }
            }
            SourceSpec::File { format, location }
        }
        SourceKind::GmailApi | SourceKind::Graph | SourceKind::Ews => {
            let user = require(params, Field::SourceUser, "the mailbox user", errs);
            // EWS takes a password, or an app registration for OAuth when one is given.
            let auth = match rt.auth {
                AuthMethod::Ews if params.get(Field::SourceCredentials).is_none() => None,
                AuthMethod::Ews => {
                    cloud::parse_cloud_auth(AuthMethod::MicrosoftAppGraph, params, secrets, errs)
                }
                a => cloud::parse_cloud_auth(a, params, secrets, errs),
            };
            let (password, ews_url) = if rt.auth == AuthMethod::Ews {
                let password = auth.is_none().then(|| {
                    read_secret(
                        params,
                        Field::SourcePasswordEnv,
                        Field::SourcePasswordFile,
                        secrets,
                        errs,
                    )
                });
                (password.flatten(), cloud::ews_url(params, errs))
            } else {
                (None, None)
            };
            SourceSpec::Api {
                kind: rt.source,
                user: user.unwrap_or_default().to_string(),
                domain: params.get(Field::SourceDomain).map(str::to_string),
                auth,
                password,
                ews_url,
            }
        }
        SourceKind::Peripheral => SourceSpec::Other,
    }
}

fn default_stem(params: &Params, source: &SourceSpec) -> String {
    match source {
        SourceSpec::Imap { endpoint, .. } => endpoint.login(),
        SourceSpec::Api { user, domain, .. } => match domain {
            Some(d) => format!("{user}@{d}"),
            None => user.clone(),
        },
        SourceSpec::File { location, .. } => location
            .file_name()
            .map(|n| match n.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem.to_string(),
                _ => n,
            })
            .unwrap_or_else(|| "mailbox".to_string()),
        SourceSpec::Other => params
            .get(Field::SourceUser)
            .unwrap_or("output")
            .to_string(),
    }
}

fn parse_dest(
    rt: &RequestType,
    params: &Params,
    source: &SourceSpec,
    secrets: &dyn SecretLookup,
    errs: &mut RequestErrors,
) -> DestSpec {
    match rt.dest {
        DestKind::File(format) => {
            let Some(url) = require(
                params,
                Field::DestUrl,
                "where to write the output (a path or s3:// URL)",
                errs,
            ) else {
                return DestSpec::Other;
            };
            let Some(mut location) = Location::parse(url) else {
                errs.push(
                    Field::DestUrl,
                    format!("`{url}` is not a path, file:// or s3:// URL"),
                );
                return DestSpec::Other;
            };
            if let Some(ext) = format.extension() {
                let is_dir = match &location {
                    Location::Local(p) => url.ends_with('/') || p.is_dir(),
                    Location::S3 { key, .. } => key.is_empty() || key.ends_with('/'),
                };
                if let Some(name) = params.get(Field::FileName)
                    && (name.starts_with('/') || name.ends_with('/'))
                {
                    errs.push(Field::FileName, "must not start or end with `/`");
                }
                if is_dir {
                    let name = match params.get(Field::FileName) {
                        Some(n) => n.to_string(),
                        None => format!("{}.{ext}", default_stem(params, source)),
                    };
                    let name = if name.to_ascii_lowercase().ends_with(&format!(".{ext}")) {
                        name
                    } else {
                        format!("{name}.{ext}")
                    };
                    location = match location {
                        Location::Local(p) => Location::Local(p.join(name)),
                        Location::S3 { bucket, key } => Location::S3 {
                            bucket,
                            key: format!("{key}{name}"),
                        },
                    };
                } else {
                    let fname = location
                        .file_name()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if !fname.ends_with(&format!(".{ext}")) {
                        errs.push(
                            Field::DestUrl,
                            format!("`{url}` must name a .{ext} file or a directory ending in `/`"),
                        );
                    }
                }
            }
            DestSpec::File { format, location }
        }
        DestKind::Imap(preset) => {
            let server = params
                .get(Field::DestServer)
                .or(preset.default_server())
                .map(str::to_string);
            if server.is_none() {
                errs.push(Field::DestServer, "missing; the vault's IMAP server");
            }
            let user = require(params, Field::DestUser, "the vault user", errs);
            let password = read_secret(
                params,
                Field::DestPasswordEnv,
                Field::DestPasswordFile,
                secrets,
                errs,
            );
            let (tls, ca_file, insecure) = parse_tls(
                params,
                (Field::DestTls, Field::DestCaFile, Field::DestInsecure),
                errs,
            );
            let default_port = tls.map_or(993, ImapTls::default_port);
            let port = parse_port(params, Field::DestPort, default_port, errs);
            let folder = params
                .get(Field::DestFolder)
                .map(|f| FolderPath::parse(f, '/'))
                .unwrap_or_default();
            if let Some(first) = folder.segments().first()
                && RESERVED_DEST_FOLDERS
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(first))
            {
                errs.push(
                    Field::DestFolder,
                    format!("`{first}` is reserved; use another destination folder"),
                );
            }
            DestSpec::Imap {
                preset,
                endpoint: ImapEndpoint {
                    server: server.unwrap_or_default(),
                    port,
                    user: user.unwrap_or_default().to_string(),
                    domain: params.get(Field::DestDomain).map(str::to_string),
                    password,
                    tls,
                    ca_file,
                    insecure,
                    admin: None,
                    limits: imap_limits::parse_limits(params, &imap_limits::DEST, errs),
                },
                folder,
            }
        }
        DestKind::Graph => {
            let user = require(params, Field::DestUser, "the Microsoft 365 user", errs);
            DestSpec::Graph {
                user: user.unwrap_or_default().to_string(),
                domain: params.get(Field::DestDomain).map(str::to_string),
            }
        }
        DestKind::Peripheral => DestSpec::Other,
    }
}

#[cfg(test)]
mod tests;
