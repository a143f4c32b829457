//! OAuth2 access tokens for the cloud sources: Google service accounts (JWT bearer grant,
//! RFC 7523, with domain-wide delegation) and Microsoft app registrations (client
//! credentials grant), behind one cache that refreshes a token before it expires.
//!
//! Tokens, keys and secrets are never logged: every type here has a hand-written `Debug`.

mod cache;
mod error;
mod google;
mod microsoft;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use legacyflo_core::request::{CloudAuth, CloudCredentials, Secret};

pub use cache::TokenCache;
pub use error::OAuthError;
pub use google::{GOOGLE_TOKEN_URL, GoogleServiceAccount};
pub use microsoft::{MICROSOFT_AUTHORITY, MicrosoftApp};

/// Scope of Gmail over IMAP (XOAUTH2).
pub const SCOPE_GMAIL_IMAP: &str = "https://mail.google.com/";
/// Scope of the read-only Gmail API.
pub const SCOPE_GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
/// Scope of Exchange Online IMAP (XOAUTH2) for an app registration.
pub const SCOPE_OUTLOOK_IMAP: &str = "https://outlook.office365.com/.default";
/// Scope of Microsoft Graph for an app registration.
pub const SCOPE_GRAPH: &str = "https://graph.microsoft.com/.default";
/// Scope of EWS for an app registration.
pub const SCOPE_EWS: &str = "https://outlook.office365.com/.default";

/// A token as a token endpoint issued it.
#[derive(Clone)]
pub struct FreshToken {
    /// The access token.
    pub access_token: Secret,
    /// Its lifetime from now, as the endpoint said (`expires_in`).
    pub expires_in: Duration,
}

impl std::fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FreshToken(***, expires in {:?})", self.expires_in)
    }
}

/// Something that asks a token endpoint for a new access token.
#[async_trait]
pub trait TokenFetcher: Send + Sync {
    /// A new token. Errors name what is wrong (bad key, wrong tenant, revoked grant) and
    /// never quote a secret.
    async fn fetch(&self) -> Result<FreshToken, OAuthError>;
    /// What the tokens are for, for logs and errors (`Google service account x for y`).
    fn describe(&self) -> String;
}

/// A cached token source for `auth`, acting for `mailbox` with `scope`.
///
/// Google keys act as `mailbox` (the JWT's `sub`); a Microsoft app acts for the whole tenant,
/// so `mailbox` only names the mailbox in errors. Fails with [`OAuthError::Credentials`] when
/// the key cannot be used (for instance, a PEM that is not an RSA key).
pub fn token_cache(
    auth: &CloudAuth,
    mailbox: &str,
    scope: &str,
    http: reqwest::Client,
) -> Result<Arc<TokenCache>, OAuthError> {
    let fetcher: Arc<dyn TokenFetcher> = match &auth.credentials {
        CloudCredentials::GoogleServiceAccount { .. } => Arc::new(GoogleServiceAccount::new(
            &auth.credentials,
            mailbox,
            scope,
            auth.token_url.as_deref(),
            http,
        )?),
        CloudCredentials::MicrosoftApp { .. } => Arc::new(MicrosoftApp::new(
            &auth.credentials,
            scope,
            auth.token_url.as_deref(),
            http,
        )?),
    };
    Ok(Arc::new(TokenCache::new(fetcher)))
}

/// The HTTP client the token and API requests use: rustls with the public roots,
/// timeouts so that a dead peer cannot hang a run.
pub fn http_client() -> Result<reqwest::Client, OAuthError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("legacyflo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OAuthError::Transport {
            endpoint: "HTTP client".into(),
            message: e.to_string(),
        })
}

/// The IMAP source of an OAuth request type (GMAILOAUTH-*, O365-*): XOAUTH2 as
/// [`ImapEndpoint::login`](legacyflo_core::request::ImapEndpoint::login) with tokens for
/// the provider's IMAP scope (`https://mail.google.com/` for Gmail,
/// `https://outlook.office365.com/.default` otherwise).
pub fn open_xoauth2_imap_source(
    preset: crate::imap::ImapPreset,
    endpoint: &legacyflo_core::request::ImapEndpoint,
    auth: &CloudAuth,
) -> legacyflo_core::Result<crate::imap::ImapSource> {
    use crate::imap::{self, Credentials, ImapPreset, ImapSourceOptions, Side};
    let user = endpoint.login();
    let scope = match preset {
        ImapPreset::Gmail => SCOPE_GMAIL_IMAP,
        _ => SCOPE_OUTLOOK_IMAP,
    };
    let tokens = token_cache(auth, &user, scope, http_client()?)?;
    let connect = imap::connect_options_with(
        endpoint,
        Side::Source,
        Credentials::XOAuth2 {
            user,
            provider: tokens,
        },
    )?;
    Ok(imap::ImapSource::new(ImapSourceOptions::new(
        connect, preset,
    )))
}
