//! The Gmail API: a Google Workspace mailbox read with a service account (domain-wide
//! delegation, scope `gmail.readonly`).
//!
//! # Calls and limits
//! `labels.list` once; `users.getProfile` (the history id) before the listing;
//! `messages.list` (500 ids a page, `q=after:… before:…` for the date
//! window, Spam and Trash left out) per folder label; `messages.get?format=raw` through HTTP
//! batch, 50 a batch. A client-side limiter keeps the user under 15,000 quota units a
//! minute (list 5, get 5 per batch part, labels.list 1). 429, 403 `rateLimitExceeded` /
//! `userRateLimitExceeded` and 5xx — for the batch and for each part — are retried with
//! backoff (or after `Retry-After`); a 401 fetches a new token. A later run from a
//! position with a history id reads `history.list` (2 units a page) instead of listing.
//!
//! # Every listed id is accounted for
//! Each id the listing gave yields exactly one event: the message; or
//! [`SourceEvent::Expunged`](legacyflo_core::SourceEvent) when `messages.get` answers 404
//! and a second `messages.get` of it alone confirms it is gone (deleted since the
//! listing); or [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent) naming the id and
//! the reason when it is still not delivered after the batch attempts (a part missing from
//! the answer, a part failing, an answer for another id) or a part fails for good (400).
//! Throttling still left after the attempts, and a batch request that fails (the network,
//! the credentials), end the stream with a retryable error instead: they are the mailbox's
//! or the connection's, not the message's.
//!
//! # Which folder a message lands in
//! Gmail has labels, not folders; each message is migrated **once**, into the first of:
//! 1. `INBOX`, if it has the INBOX label;
//! 2. its first user label in name order (case-insensitive), `/` in a label name making
//!    sub-folders (`Projekte/2024` → `Projekte` / `2024`);
//! 3. `Sent`, if it has SENT;
//! 4. `Drafts`, if it has DRAFT;
//! 5. `All Mail` (archived mail with no other label).
//!
//! All of its labels (system labels by id, user labels by name; UNREAD is the `\Seen` flag
//! instead) are kept in [`Message::labels`](legacyflo_core::Message); STARRED gives
//! `\Flagged`, DRAFT `\Draft`, the absence of UNREAD `\Seen`.

mod api;
pub mod batch;
mod source;

use legacyflo_core::Result;
use legacyflo_core::request::CloudAuth;

pub use api::{Label, classify, decode_raw};
pub use source::{ALL_MAIL, GmailOptions, GmailSource, cost};

use crate::cloud::{ApiClient, RetryPolicy};
use crate::oauth;

/// Google's Gmail API host.
pub const GMAIL_URL: &str = "https://gmail.googleapis.com";

/// The Gmail API source of `user` with `auth` (its API and token URLs as given).
pub fn open_gmail_source(auth: &CloudAuth, user: &str) -> Result<GmailSource> {
    let http = oauth::http_client()?;
    let tokens = oauth::token_cache(auth, user, oauth::SCOPE_GMAIL_READONLY, http.clone())?;
    let client = ApiClient::new("gmail", http, tokens, RetryPolicy::default());
    Ok(GmailSource::new(
        client,
        GmailOptions::new(user, auth.api_url.as_deref()),
    ))
}
