//! Microsoft Graph: a Microsoft 365 mailbox read with an app registration (client
//! credentials), folder by folder (listed by delta queries, so that a later run asks only
//! for the changes), MIME by `GET /users/{id}/messages/{id}/$value`.
//!
//! Limits honoured: at most 4 requests in flight per mailbox, `Retry-After` on 429 and 503,
//! a fresh token when one expires mid-run (proactively, and on a 401).
//!
//! Every listed message yields one event: its MIME; or
//! [`SourceEvent::Expunged`](legacyflo_core::SourceEvent) when `$value` answers 404 and
//! `GET messages/{id}` confirms it is gone; or
//! [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent) naming the id and the reason
//! when Graph keeps failing for that message after the retries (5xx, 4xx, an answer over
//! the size limit, a `$value` still 404 for a message that exists). Throttling, the network
//! and the credentials end the stream with a retryable error instead. A message changed or
//! removed during a delta round is taken as last seen. Sibling folders with the same
//! display name are kept apart (` (2)` appended, with a note); an empty display name is
//! shown as `(no name)`.

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
