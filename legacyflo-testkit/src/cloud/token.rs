//! Token endpoints: Google's (JWT bearer grant, RFC 7523, the assertion verified against the
//! committed test key) and Microsoft's (client credentials at `/{tenant}/oauth2/v2.0/token`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{Running, mint_access_token, serve};

/// The public half of `testdata/oauth/google-test-key.pem`.
pub const GOOGLE_TEST_PUBLIC_KEY: &str =
    include_str!("../../../testdata/oauth/google-test-key.pub.pem");

/// Path of the committed service-account key file signed by the test key.
pub fn google_key_file() -> std::path::PathBuf {
    repo_file("testdata/oauth/google-service-account.json")
}

/// Path of a key file in the right shape whose key is not the test key.
pub fn google_wrong_key_file() -> std::path::PathBuf {
    repo_file("testdata/oauth/google-service-account-wrong-key.json")
}

/// Path of the committed Microsoft app registration file.
pub fn microsoft_app_file() -> std::path::PathBuf {
    repo_file("testdata/oauth/microsoft-app.json")
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// The identities in the committed test files.
pub mod ids {
    /// `client_email` of the Google test key.
    pub const GOOGLE_CLIENT_EMAIL: &str = "migrator@legacyflo-test.iam.gserviceaccount.com";
    /// `tenant_id` of the Microsoft test app.
    pub const MS_TENANT: &str = "11111111-2222-3333-4444-555555555555";
    /// `client_id` of the Microsoft test app.
    pub const MS_CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    /// `client_secret` of the Microsoft test app.
    pub const MS_CLIENT_SECRET: &str = "test-client-secret-value";
}

/// What the token server accepts and how it answers.
#[derive(Debug)]
pub struct TokenConfig {
    /// Mailboxes the service account may act as (domain-wide delegation), Google.
    pub delegated: Vec<String>,
    /// Scopes a Google grant may ask for.
    pub google_scopes: Vec<String>,
    /// Scopes a Microsoft grant may ask for.
    pub microsoft_scopes: Vec<String>,
    /// Lifetime of issued tokens (`expires_in`).
    pub lifetime: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            delegated: Vec::new(),
            google_scopes: vec![
                "https://mail.google.com/".into(),
                "https://www.googleapis.com/auth/gmail.readonly".into(),
            ],
            microsoft_scopes: vec![
                "https://graph.microsoft.com/.default".into(),
                "https://outlook.office365.com/.default".into(),
            ],
            lifetime: Duration::from_secs(3599),
        }
    }
}

/// Shared state of a token server.
#[derive(Debug)]
pub struct TokenState {
    /// The configuration.
    pub config: TokenConfig,
    /// Tokens issued.
    pub issued: AtomicU64,
    /// Requests refused.
    pub refused: AtomicU64,
    /// When set, every grant is refused as revoked (a deleted key, a removed app secret).
    pub revoked: AtomicBool,
    /// Lifetime of the next tokens in seconds, changeable mid-test.
    pub lifetime_secs: AtomicU64,
    google_url: std::sync::OnceLock<String>,
}

/// A running token server.
#[derive(Debug)]
pub struct TokenServer {
    /// The server.
    pub running: Running,
    /// Its state.
    pub state: Arc<TokenState>,
}

impl TokenServer {
    /// The Google token endpoint (the JWT's `aud` must be exactly this).
    pub fn google_url(&self) -> String {
        format!("{}/token", self.running.base)
    }

    /// The Microsoft authority (`/{tenant}/oauth2/v2.0/token` is appended by clients).
    pub fn microsoft_authority(&self) -> String {
        self.running.base.clone()
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.state.issued.load(Ordering::SeqCst)
    }
}

/// Starts a token server.
pub async fn token_server(config: TokenConfig) -> TokenServer {
    let lifetime = config.lifetime.as_secs();
    let state = Arc::new(TokenState {
        config,
        issued: 0.into(),
        refused: 0.into(),
        revoked: false.into(),
        lifetime_secs: lifetime.into(),
        google_url: Default::default(),
    });
    let app = Router::new()
        .route("/token", post(google_token))
        .route("/{tenant}/oauth2/v2.0/token", post(microsoft_token))
        .with_state(state.clone());
    let running = serve(app).await;
    let _ = state.google_url.set(format!("{}/token", running.base));
    TokenServer { running, state }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn refuse(state: &TokenState, status: StatusCode, error: &str, description: &str) -> Response {
    state.refused.fetch_add(1, Ordering::SeqCst);
    oauth_error(status, error, description)
}

fn issue(state: &TokenState, sub: &str, scope: &str) -> Response {
    state.issued.fetch_add(1, Ordering::SeqCst);
    let life = Duration::from_secs(state.lifetime_secs.load(Ordering::SeqCst).max(1));
    let token = mint_access_token(sub, scope, life);
    (
        StatusCode::OK,
        [("cache-control", "no-store"), ("pragma", "no-cache")],
        Json(json!({
            "access_token": token,
            "expires_in": life.as_secs(),
            "ext_expires_in": life.as_secs(),
            "token_type": "Bearer",
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct GoogleClaims {
    sub: Option<String>,
    scope: Option<String>,
}

async fn google_token(
    State(state): State<Arc<TokenState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type: ",
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    if state.revoked.load(Ordering::SeqCst) {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(GOOGLE_TEST_PUBLIC_KEY.as_bytes()) else {
        return refuse(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_failure",
            "test key",
        );
    };
    let aud = state.google_url.get().cloned().unwrap_or_default();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.leeway = 0;
    v.set_audience(&[aud]);
    v.set_issuer(&[super::token::ids::GOOGLE_CLIENT_EMAIL]);
    v.required_spec_claims = ["exp", "iat", "iss", "aud", "sub"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let claims = match jsonwebtoken::decode::<GoogleClaims>(assertion, &key, &v) {
        Ok(d) => d.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind as K;
            let desc = match e.kind() {
                K::InvalidSignature => "Invalid JWT Signature.".to_string(),
                K::ExpiredSignature => "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".to_string(),
                K::InvalidAudience => "Invalid JWT: Failed audience check.".to_string(),
                K::InvalidIssuer => "Invalid JWT: Failed issuer check.".to_string(),
                other => format!("Invalid JWT: {other:?}"),
            };
            return refuse(&state, StatusCode::BAD_REQUEST, "invalid_grant", &desc);
        }
    };
    let Some(sub) = claims.sub else {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: no sub",
        );
    };
    if !state.config.delegated.iter().any(|d| d == &sub) {
        return refuse(
            &state,
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let scope = claims.scope.unwrap_or_default();
    if scope.is_empty()
        || !scope
            .split(' ')
            .all(|s| state.config.google_scopes.iter().any(|g| g == s))
    {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    issue(&state, &sub, &scope)
}

async fn microsoft_token(
    State(state): State<Arc<TokenState>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use super::token::ids::*;
    if tenant != MS_TENANT {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let client = form.get("client_id").cloned().unwrap_or_default();
    if client != MS_CLIENT_ID {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client}' was not found in the directory '{tenant}'."
            ),
        );
    }
    if state.revoked.load(Ordering::SeqCst)
        || form.get("client_secret").map(String::as_str) != Some(MS_CLIENT_SECRET)
    {
        return refuse(
            &state,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'."
            ),
        );
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    if !state.config.microsoft_scopes.iter().any(|s| s == &scope) {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    issue(&state, &format!("app:{client}"), &scope)
}
