//! Request parameters: the service's fields, as flags and as CSV columns.

use std::collections::BTreeMap;
use std::fmt;

/// A secret (password, token): never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

macro_rules! fields {
    ($($(#[$doc:meta])* $var:ident => $key:literal, $service:literal;)*) => {
        /// A request parameter.
        ///
        /// Each has a key (`source_user`), a command-line flag (`--source-user`) and the
        /// service's field name (`Source User ID`); all three are accepted as CSV headers.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $($(#[$doc])* $var,)*
        }

        impl Field {
            /// Every field.
            pub const ALL: &'static [Field] = &[$(Field::$var,)*];

            /// The key, e.g. `source_user`.
            pub fn key(self) -> &'static str {
                match self { $(Field::$var => $key,)* }
            }

            /// The service's field name, e.g. `Source User ID`.
            pub fn service_name(self) -> &'static str {
                match self { $(Field::$var => $service,)* }
            }
        }
    };
}

fields! {
    /// The request type (`GMAIL-S3-ZIP`).
    Type => "type", "Request Type";
    /// Source IMAP server host or IP.
    SourceServer => "source_server", "Source Server";
    /// Source port.
    SourcePort => "source_port", "Source Port";
    /// Source user ID, without the domain.
    SourceUser => "source_user", "Source User ID";
    /// Source domain.
    SourceDomain => "source_domain", "Source Domain";
    /// Name of the environment variable holding the source password.
    SourcePasswordEnv => "source_password_env", "Source Password Env";
    /// File holding the source password.
    SourcePasswordFile => "source_password_file", "Source Password File";
    /// Source file or directory: local path, `file://` or `s3://bucket/key`.
    SourceUrl => "source_url", "Source File";
    /// Source IMAP transport security: `implicit`, `starttls` or `none`.
    SourceTls => "source_tls", "Source TLS";
    /// PEM file of the CA that signed the source server's certificate.
    SourceCaFile => "source_ca_file", "Source CA File";
    /// `true` accepts any source server certificate (testing only).
    SourceInsecure => "source_insecure", "Source Insecure";
    /// Admin (master) user that logs in on behalf of the source user; the password fields
    /// then hold the admin's password.
    SourceAdminUser => "source_admin_user", "Source Admin User ID";
    /// Deadline of one IMAP command at the source (seconds, or with `s`/`m`/`h`).
    SourceCommandTimeout => "source_command_timeout", "Source Command Timeout";
    /// The largest message read from the source IMAP server (bytes, or with `K`/`M`/`G`).
    SourceMaxMessageSize => "source_max_message_size", "Source Max Message Size";
    /// The longest response line accepted from the source IMAP server.
    SourceMaxLineLength => "source_max_line_length", "Source Max Line Length";
    /// Lower date bound, `YYYY-MM-DD`, inclusive.
    Since => "since", "Since";
    /// Upper date bound, `YYYY-MM-DD`, exclusive.
    Before => "before", "Before";
    /// One folder and its sub-folders, `/`-separated.
    Folder => "folder", "Folder";
    /// Destination file or directory: local path, `file://` or `s3://bucket/key`.
    DestUrl => "dest_url", "Destination";
    /// Destination file name (when the destination is a directory or bucket prefix).
    FileName => "file_name", "Destination File Name";
    /// Destination IMAP server.
    DestServer => "dest_server", "Destination Server";
    /// Destination port.
    DestPort => "dest_port", "Destination Port";
    /// Destination (vault) user ID.
    DestUser => "dest_user", "Destination User ID";
    /// Destination domain.
    DestDomain => "dest_domain", "Destination Domain";
    /// Name of the environment variable holding the destination password.
    DestPasswordEnv => "dest_password_env", "Destination Password Env";
    /// File holding the destination password.
    DestPasswordFile => "dest_password_file", "Destination Password File";
    /// Destination folder under which the hierarchy is recreated.
    DestFolder => "dest_folder", "Destination Folder";
    /// Destination IMAP transport security: `implicit`, `starttls` or `none`.
    DestTls => "dest_tls", "Destination TLS";
    /// PEM file of the CA that signed the destination server's certificate.
    DestCaFile => "dest_ca_file", "Destination CA File";
    /// `true` accepts any destination server certificate (testing only).
    DestInsecure => "dest_insecure", "Destination Insecure";
    /// Deadline of one IMAP command at the destination.
    DestCommandTimeout => "dest_command_timeout", "Destination Command Timeout";
    /// The largest message read back from the destination IMAP server.
    DestMaxMessageSize => "dest_max_message_size", "Destination Max Message Size";
    /// The longest response line accepted from the destination IMAP server.
    DestMaxLineLength => "dest_max_line_length", "Destination Max Line Length";
    /// Source credentials file: a Google service-account JSON key, or a Microsoft app
    /// registration (tenant, client id, secret or certificate) as JSON.
    SourceCredentials => "source_credentials", "Source Credentials File";
    /// Base URL of the source's HTTP API (Gmail API, Graph, EWS); overrides the provider's.
    SourceApiUrl => "source_api_url", "Source API URL";
    /// OAuth2 token endpoint of the source; overrides the provider's.
    SourceTokenUrl => "source_token_url", "Source Token URL";
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`); AWS when absent.
    S3Endpoint => "s3_endpoint", "S3 Endpoint";
    /// S3 region (`us-east-1`); from the AWS configuration when absent.
    S3Region => "s3_region", "S3 Region";
    /// `true` addresses buckets by path (`endpoint/bucket/key`), as most S3-compatible stores need.
    S3PathStyle => "s3_path_style", "S3 Path Style";
}

impl Field {
    /// The command-line flag, e.g. `--source-user`; the type is the positional `TYPE`.
    pub fn flag(self) -> String {
        if self == Field::Type {
            return "TYPE".to_string();
        }
        format!("--{}", self.key().replace('_', "-"))
    }

    /// Finds a field by key, flag or service name (case and `-`/`_`/space insensitive).
    /// The service's plain names (`User ID`, `Server`, …) mean the source's.
    pub fn from_name(name: &str) -> Option<Field> {
        let norm = normalise(name);
        let plain = [
            ("userid", Field::SourceUser),
            ("user", Field::SourceUser),
            ("domain", Field::SourceDomain),
            ("server", Field::SourceServer),
            ("port", Field::SourcePort),
            ("s3bucketname", Field::SourceUrl),
            ("filename", Field::FileName),
            ("destinationfilename", Field::FileName),
            ("destinationfolder", Field::DestFolder),
            ("requesttype", Field::Type),
        ];
        if let Some((_, f)) = plain.iter().find(|(n, _)| *n == norm) {
            return Some(*f);
        }
        Field::ALL.iter().copied().find(|f| {
            normalise(f.key()) == norm
                || normalise(f.service_name()) == norm
                || normalise(&f.key().replace("dest_", "destination_")) == norm
        })
    }

    /// Whether the field names a place a secret is kept (never the secret itself).
    pub fn is_secret_reference(self) -> bool {
        matches!(
            self,
            Field::SourcePasswordEnv
                | Field::SourcePasswordFile
                | Field::DestPasswordEnv
                | Field::DestPasswordFile
        )
    }

    /// Whether the field only tunes how patiently a run talks to a server (a deadline, a
    /// line length), not what it migrates: such fields are left out of the state key, so
    /// a re-run with another value resumes the same request.
    pub fn is_tuning(self) -> bool {
        matches!(
            self,
            Field::SourceCommandTimeout
                | Field::SourceMaxLineLength
                | Field::DestCommandTimeout
                | Field::DestMaxLineLength
        )
    }

    /// How the field is named in error messages: `Source User ID (--source-user)`.
    pub fn describe(self) -> String {
        format!("{} ({})", self.service_name(), self.flag())
    }
}

fn normalise(s: &str) -> String {
    s.trim()
        .trim_start_matches('-')
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Raw parameters as the user gave them (flags or a CSV row). Empty values count as unset,
/// as in the service's CSV. Passwords are not parameters: only the names of the
/// environment variables or files that hold them are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<Field, String>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Params::default()
    }

    /// Sets `field`; an empty or blank value unsets it.
    pub fn set(&mut self, field: Field, value: impl Into<String>) -> &mut Self {
        let v = value.into();
        if v.trim().is_empty() {
            self.values.remove(&field);
        } else {
            self.values.insert(field, v.trim().to_string());
        }
        self
    }

    /// Builder form of [`Params::set`].
    pub fn with(mut self, field: Field, value: impl Into<String>) -> Self {
        self.set(field, value);
        self
    }

    /// The value of `field`, if set.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.values.get(&field).map(String::as_str)
    }

    /// Every set field.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &str)> {
        self.values.iter().map(|(f, v)| (*f, v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(Field::from_name("--source-user"), Some(Field::SourceUser));
        assert_eq!(Field::from_name("source_user"), Some(Field::SourceUser));
        assert_eq!(Field::from_name("Source User ID"), Some(Field::SourceUser));
        assert_eq!(Field::from_name("User ID"), Some(Field::SourceUser));
        assert_eq!(
            Field::from_name("Destination User ID"),
            Some(Field::DestUser)
        );
        assert_eq!(
            Field::from_name("destination_folder"),
            Some(Field::DestFolder)
        );
        assert_eq!(
            Field::from_name("dest-password-env"),
            Some(Field::DestPasswordEnv)
        );
        assert_eq!(Field::from_name("Since"), Some(Field::Since));
        assert_eq!(Field::from_name("password"), None);
        for f in Field::ALL.iter().filter(|f| **f != Field::Type) {
            assert_eq!(Field::from_name(&f.flag()), Some(*f));
            assert_eq!(Field::from_name(f.service_name()), Some(*f));
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }
}
