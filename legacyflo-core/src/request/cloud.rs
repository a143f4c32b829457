//! The cloud part of a request: the credentials file and the API and token URLs of the
//! OAuth2 sources (Gmail over IMAP XOAUTH2 or the Gmail API, Microsoft 365 over IMAP
//! XOAUTH2 or Graph, Exchange over EWS).

use std::fmt;
use std::path::{Path, PathBuf};

use super::params::{Field, Params, Secret};
use super::types::AuthMethod;
use super::{RequestErrors, SecretLookup};

/// What a credentials file (`--source-credentials`) holds, parsed and checked.
///
/// `Debug` never shows the private key or the client secret.
#[derive(Clone, PartialEq, Eq)]
pub enum CloudCredentials {
    /// A Google service-account JSON key (domain-wide delegation): the JWT bearer grant is
    /// signed with `private_key` (RS256) and issued as `client_email`.
    GoogleServiceAccount {
        /// The service account's e-mail, the JWT's `iss`.
        client_email: String,
        /// The PEM private key (PKCS#8 or PKCS#1).
        private_key: Secret,
        /// The key id, sent as the JWT header's `kid`.
        private_key_id: Option<String>,
        /// The token endpoint named in the key file, if any.
        token_uri: Option<String>,
    },
    /// A Microsoft Entra app registration for the client credentials grant.
    MicrosoftApp {
        /// The tenant (directory) id or domain.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
    },
}

impl fmt::Debug for CloudCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudCredentials::GoogleServiceAccount { client_email, .. } => {
                write!(f, "GoogleServiceAccount({client_email}, key ***)")
            }
            CloudCredentials::MicrosoftApp {
                tenant_id,
                client_id,
                ..
            } => write!(
                f,
                "MicrosoftApp(tenant {tenant_id}, client {client_id}, secret ***)"
            ),
        }
    }
}

/// How a cloud source authenticates and where it sends its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudAuth {
    /// The credentials file, as given.
    pub file: PathBuf,
    /// Its content.
    pub credentials: CloudCredentials,
    /// `--source-api-url`: base URL of the Gmail API, Graph or EWS instead of the provider's.
    pub api_url: Option<String>,
    /// `--source-token-url`: the OAuth2 token endpoint (Google) or authority (Microsoft,
    /// `/{tenant}/oauth2/v2.0/token` is appended) instead of the provider's.
    pub token_url: Option<String>,
}

/// Which credentials an auth method needs.
fn wants(auth: AuthMethod) -> Option<&'static str> {
    match auth {
        AuthMethod::GoogleServiceAccountImap | AuthMethod::GoogleServiceAccountApi => {
            Some("google")
        }
        AuthMethod::MicrosoftAppImap | AuthMethod::MicrosoftAppGraph => Some("microsoft"),
        _ => None,
    }
}

/// Whether the auth method authenticates with a credentials file.
pub(super) fn uses_credentials(auth: AuthMethod) -> bool {
    wants(auth).is_some()
}

fn parse_url(params: &Params, field: Field, errs: &mut RequestErrors) -> Option<String> {
    let v = params.get(field)?;
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty() && !host.starts_with('/') && !v.contains(char::is_whitespace) =>
        {
            Some(v.trim_end_matches('/').to_string())
        }
        _ => {
            errs.push(field, format!("`{v}` is not an http:// or https:// URL"));
            None
        }
    }
}

/// The EWS endpoint of a request: `--source-api-url` when given, else
/// `https://{--source-server}/EWS/Exchange.asmx`; neither is an error on the server field.
pub(super) fn ews_url(params: &Params, errs: &mut RequestErrors) -> Option<String> {
    if params.get(Field::SourceApiUrl).is_some() {
        return parse_url(params, Field::SourceApiUrl, errs);
    }
    match params.get(Field::SourceServer).map(str::trim) {
        Some(host)
            if !host.is_empty()
                && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') =>
        {
            Some(format!("https://{host}/EWS/Exchange.asmx"))
        }
        Some(host) => {
            errs.push(
                Field::SourceServer,
                format!("`{host}` is not a host name (give the EWS URL with --source-api-url)"),
            );
            None
        }
        None => {
            errs.push(
                Field::SourceServer,
                "missing; the Exchange server host name (or the EWS URL as --source-api-url)",
            );
            None
        }
    }
}

fn json_str(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(|x| x.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses a credentials file's content for `auth`; the error says what is wrong without
/// quoting any secret.
pub fn parse_credentials(auth: AuthMethod, text: &str) -> Result<CloudCredentials, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "not a JSON credentials file (line {}, column {}: {})",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Eof => "unexpected end",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "wrong type",
                serde_json::error::Category::Io => "read error",
            }
        )
    })?;
    if !v.is_object() {
        return Err("not a JSON object".to_string());
    }
    let missing = |k: &str, what: &str| format!("`{k}` is missing or empty; {what}");
    match wants(auth) {
        Some("google") => {
            if let Some(t) = json_str(&v, "type")
                && t != "service_account"
            {
                return Err(format!(
                    "`type` is `{t}`, expected `service_account` (a Google service-account JSON key)"
                ));
            }
            let client_email = json_str(&v, "client_email")
                .ok_or_else(|| missing("client_email", "a Google service-account JSON key"))?;
            let key = json_str(&v, "private_key")
                .ok_or_else(|| missing("private_key", "a Google service-account JSON key"))?;
            if !key.contains("-----BEGIN") || !key.contains("PRIVATE KEY-----") {
                return Err("`private_key` is not a PEM private key".to_string());
            }
            Ok(CloudCredentials::GoogleServiceAccount {
                client_email,
                private_key: Secret::new(key),
                private_key_id: json_str(&v, "private_key_id"),
                token_uri: json_str(&v, "token_uri"),
            })
        }
        Some(_) => {
            let tenant_id = json_str(&v, "tenant_id")
                .or_else(|| json_str(&v, "tenant"))
                .ok_or_else(|| missing("tenant_id", "the Microsoft Entra tenant id or domain"))?;
            if !tenant_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return Err(format!(
                    "`tenant_id` `{tenant_id}` is not a tenant id or domain"
                ));
            }
            let client_id = json_str(&v, "client_id")
                .ok_or_else(|| missing("client_id", "the application (client) id"))?;
            let client_secret = json_str(&v, "client_secret").ok_or_else(|| {
                if v.get("certificate").is_some() || v.get("certificate_path").is_some() {
                    "certificate credentials are not supported in this build; give `client_secret`"
                        .to_string()
                } else {
                    missing("client_secret", "the app registration's client secret")
                }
            })?;
            Ok(CloudCredentials::MicrosoftApp {
                tenant_id,
                client_id,
                client_secret: Secret::new(client_secret),
            })
        }
        None => Err("this request type does not use a credentials file".to_string()),
    }
}

/// Reads and checks `--source-credentials`, `--source-api-url` and `--source-token-url`
/// for `auth`; each problem is pushed naming its field.
pub(super) fn parse_cloud_auth(
    auth: AuthMethod,
    params: &Params,
    secrets: &dyn SecretLookup,
    errs: &mut RequestErrors,
) -> Option<CloudAuth> {
    let api_url = parse_url(params, Field::SourceApiUrl, errs);
    let token_url = parse_url(params, Field::SourceTokenUrl, errs);
    let Some(path) = params.get(Field::SourceCredentials) else {
        errs.push(
            Field::SourceCredentials,
            match wants(auth) {
                Some("google") => "missing; the Google service-account JSON key file",
                _ => "missing; the Microsoft app registration JSON file (tenant_id, client_id, client_secret)",
            },
        );
        return None;
    };
    let text = match secrets.file(Path::new(path)) {
        Ok(t) => t,
        Err(e) => {
            errs.push(
                Field::SourceCredentials,
                format!("cannot read `{path}`: {e}"),
            );
            return None;
        }
    };
    match parse_credentials(auth, &text) {
        Ok(credentials) => Some(CloudAuth {
            file: PathBuf::from(path),
            credentials,
            api_url,
            token_url,
        }),
        Err(why) => {
            errs.push(Field::SourceCredentials, format!("`{path}`: {why}"));
            None
        }
    }
}
