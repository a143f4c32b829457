//! Google service accounts: the JWT bearer grant (RFC 7523) as Google documents it for
//! server-to-server apps with domain-wide delegation.
//!
//! The assertion is an RS256 JWT with `iss` = the service account's e-mail, `sub` = the
//! mailbox to act as, `scope`, `aud` = the token endpoint, `iat` and `exp` (one hour). It is
//! POSTed as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`.

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use legacyflo_core::request::{CloudCredentials, Secret};
use serde::{Deserialize, Serialize};

use super::{FreshToken, OAuthError, TokenFetcher};

/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Lifetime asked for in the assertion (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3600;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) access_token: Option<String>,
    pub(super) expires_in: Option<u64>,
    pub(super) error: Option<String>,
    pub(super) error_description: Option<String>,
}

/// Tokens for one mailbox from a Google service-account key.
pub struct GoogleServiceAccount {
    client_email: String,
    key: EncodingKey,
    key_id: Option<String>,
    subject: String,
    scope: String,
    token_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for GoogleServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl GoogleServiceAccount {
    /// Acts as `subject` with `scope`, posting to `token_url` (else the key file's
    /// `token_uri`, else [`GOOGLE_TOKEN_URL`]). Fails when `credentials` is not a Google
    /// key or its `private_key` is not an RSA key.
    pub fn new(
        credentials: &CloudCredentials,
        subject: &str,
        scope: &str,
        token_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<GoogleServiceAccount, OAuthError> {
        let CloudCredentials::GoogleServiceAccount {
            client_email,
            private_key,
            private_key_id,
            token_uri,
        } = credentials
        else {
            return Err(OAuthError::Credentials(
                "expected a Google service-account JSON key".into(),
            ));
        };
        let key = EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(|_| {
            OAuthError::Credentials(format!(
                "the `private_key` of {client_email} is not a valid RSA private key in PEM form"
            ))
        })?;
        Ok(GoogleServiceAccount {
            client_email: client_email.clone(),
            key,
            key_id: private_key_id.clone(),
            subject: subject.to_string(),
            scope: scope.to_string(),
            token_url: token_url
                .map(str::to_string)
                .or_else(|| token_uri.clone())
                .unwrap_or_else(|| GOOGLE_TOKEN_URL.to_string()),
            http,
        })
    }

    fn assertion(&self) -> Result<String, OAuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.client_email,
            sub: &self.subject,
            scope: &self.scope,
            aud: &self.token_url,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| OAuthError::Credentials(format!("cannot sign the JWT assertion: {e}")))
    }
}

/// Reads a token endpoint's answer: a token, or the OAuth2 error it names.
pub(super) async fn read_token_response(
    endpoint: &str,
    what: &str,
    resp: reqwest::Response,
) -> Result<FreshToken, OAuthError> {
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| OAuthError::Transport {
        endpoint: endpoint.to_string(),
        message: format!("reading the answer: {e}"),
    })?;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(OAuthError::Transport {
            endpoint: endpoint.to_string(),
            message: format!("HTTP {status}"),
        });
    }
    let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
    match parsed {
        Some(TokenResponse {
            access_token: Some(t),
            expires_in,
            ..
        }) if status.is_success() && !t.is_empty() => Ok(FreshToken {
            access_token: Secret::new(t),
            expires_in: Duration::from_secs(expires_in.unwrap_or(3600)),
        }),
        Some(TokenResponse {
            error: Some(error),
            error_description,
            ..
        }) => Err(OAuthError::Refused {
            endpoint: endpoint.to_string(),
            what: what.to_string(),
            error,
            description: error_description,
        }),
        _ => Err(OAuthError::Protocol {
            endpoint: endpoint.to_string(),
            message: format!("HTTP {status} without a token or an OAuth2 error"),
        }),
    }
}

#[async_trait]
impl TokenFetcher for GoogleServiceAccount {
    async fn fetch(&self) -> Result<FreshToken, OAuthError> {
        let assertion = self.assertion()?;
        let resp = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| OAuthError::Transport {
                endpoint: self.token_url.clone(),
                message: e.without_url().to_string(),
            })?;
        read_token_response(&self.token_url, &self.describe(), resp).await
    }

    fn describe(&self) -> String {
        format!(
            "Google service account {} acting as {} (scope {})",
            self.client_email, self.subject, self.scope
        )
    }
}
