//! Microsoft Graph: a Microsoft 365 mailbox read with an app registration (client
//! credentials), folder by folder (listed by delta queries, so that a later run asks only
//! for the changes), MIME by `GET /users/{id}/messages/{id}/$value`.
//!
//! Limits honoured: at most 4 requests in flight per mailbox, `Retry-After` on 429 and 503,
//! a fresh token when one expires mid-run (proactively, and on a 401).

mod api;
mod source;

use legacyflo_core::Result;
use legacyflo_core::request::CloudAuth;

pub use api::{MailFolder, MessageMeta, classify, error_text};
pub use source::{GraphOptions, GraphSource, SKIPPED_FOLDERS};

use crate::cloud::{ApiClient, RetryPolicy};
use crate::oauth;

/// Graph v1.0.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// The Graph source of `mailbox` with `auth` (its API and token URLs as given).
pub fn open_graph_source(auth: &CloudAuth, mailbox: &str) -> Result<GraphSource> {
    let http = oauth::http_client()?;
    let tokens = oauth::token_cache(auth, mailbox, oauth::SCOPE_GRAPH, http.clone())?;
    let client = ApiClient::new("graph", http, tokens, RetryPolicy::default());
    Ok(GraphSource::new(
        client,
        GraphOptions::new(mailbox, auth.api_url.as_deref()),
    ))
}
