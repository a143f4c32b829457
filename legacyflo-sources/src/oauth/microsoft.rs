//! Microsoft Entra app registrations: the OAuth2 client credentials grant (`oauth2`
//! crate) at `{authority}/{tenant}/oauth2/v2.0/token`, secret sent in the request body.

use std::time::Duration;

use async_trait::async_trait;
use legacyflo_core::request::{CloudCredentials, Secret};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};

use super::{FreshToken, OAuthError, TokenFetcher};

/// Microsoft's global authority.
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// App-only tokens of one tenant for one scope.
pub struct MicrosoftApp {
    client: Client,
    tenant_id: String,
    client_id: String,
    scope: String,
    token_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for MicrosoftApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl MicrosoftApp {
    /// Tokens for `scope` from `authority` (default [`MICROSOFT_AUTHORITY`]). Fails when
    /// `credentials` is not a Microsoft app registration or the URL is unusable.
    pub fn new(
        credentials: &CloudCredentials,
        scope: &str,
        authority: Option<&str>,
        http: reqwest::Client,
    ) -> Result<MicrosoftApp, OAuthError> {
        let CloudCredentials::MicrosoftApp {
            tenant_id,
            client_id,
            client_secret,
        } = credentials
        else {
            return Err(OAuthError::Credentials(
                "expected a Microsoft app registration (tenant_id, client_id, client_secret)"
                    .into(),
            ));
        };
        let authority = authority
            .unwrap_or(MICROSOFT_AUTHORITY)
            .trim_end_matches('/');
        let token_url = format!("{authority}/{tenant_id}/oauth2/v2.0/token");
        let url = TokenUrl::new(token_url.clone())
            .map_err(|e| OAuthError::Credentials(format!("token URL `{token_url}`: {e}")))?;
        let client = BasicClient::new(ClientId::new(client_id.clone()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url);
        Ok(MicrosoftApp {
            client,
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
            scope: scope.to_string(),
            token_url,
            http,
        })
    }
}

#[async_trait]
impl TokenFetcher for MicrosoftApp {
    async fn fetch(&self) -> Result<FreshToken, OAuthError> {
        let res = self
            .client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.scope.clone()))
            .request_async(&self.http)
            .await;
        match res {
            Ok(t) => Ok(FreshToken {
                access_token: Secret::new(t.access_token().secret().clone()),
                expires_in: t.expires_in().unwrap_or(Duration::from_secs(3600)),
            }),
            Err(RequestTokenError::ServerResponse(r)) => Err(OAuthError::Refused {
                endpoint: self.token_url.clone(),
                what: self.describe(),
                error: r.error().to_string(),
                description: r.error_description().cloned(),
            }),
            Err(RequestTokenError::Request(e)) => Err(OAuthError::Transport {
                endpoint: self.token_url.clone(),
                message: match &e {
                    oauth2::HttpClientError::Reqwest(r) => r.without_url_ref(),
                    other => other.to_string(),
                },
            }),
            Err(RequestTokenError::Parse(_, body)) => {
                // A 5xx page or a proxy's answer is not a token response.
                Err(OAuthError::Transport {
                    endpoint: self.token_url.clone(),
                    message: format!("answer is not a token response ({} bytes)", body.len()),
                })
            }
            Err(RequestTokenError::Other(m)) => Err(OAuthError::Protocol {
                endpoint: self.token_url.clone(),
                message: m,
            }),
        }
    }

    fn describe(&self) -> String {
        format!(
            "Microsoft app {} of tenant {} (scope {})",
            self.client_id, self.tenant_id, self.scope
        )
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(u.as_str(), "<token endpoint>");
        }
        s
    }
}
