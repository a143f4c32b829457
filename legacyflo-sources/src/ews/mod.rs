//! Exchange Web Services: an on-premises Exchange mailbox (or Exchange Online until EWS is
//! switched off there) read with FindFolder, FindItem and GetItem over SOAP.
//!
//! Auth: HTTP Basic with the mailbox's login and password, or OAuth bearer tokens of an
//! app registration (scope `https://outlook.office365.com/.default`), which reach the
//! mailbox by `ExchangeImpersonation`. Limits honoured: `ErrorServerBusy` waits its
//! `BackOffMilliseconds`, 5xx answers are retried with backoff, a fresh token after a 401.
//!
//! Every item `FindItem` lists yields one event: its MIME; or, when `GetItem` does not
//! deliver it (no response message for it, an error response, an answer naming another
//! item, `ErrorItemNotFound`), the item is asked for alone: `ErrorItemNotFound` then is
//! [`SourceEvent::Expunged`](legacyflo_core::SourceEvent) (deleted since the listing), and
//! what still fails is [`SourceEvent::Unreadable`](legacyflo_core::SourceEvent) naming the
//! item and the reason. A batch that fails as a whole with an answer of the server is
//! retried item by item; mailbox-wide codes (impersonation denied, no such mailbox), the
//! network and throttling after the retries end the stream. An item met on two pages is
//! read once; an item listed without an `ItemId` fails the listing (it could not be
//! fetched). Sibling folders with one display name are kept apart (` (2)` appended, with a
//! note); an empty display name is shown as `(no name)`.

mod api;
mod source;
mod xml;

use legacyflo_core::request::{CloudAuth, Secret};
use legacyflo_core::{Error, ErrorKind, Result};

pub use api::{SERVER_VERSION, classify};
pub use source::{EwsAuth, EwsOptions, EwsSource, SKIPPED_DISTINGUISHED};

use crate::cloud::{ApiClient, RetryPolicy};
use crate::oauth;

/// The EWS source of `mailbox` at `url`: OAuth bearer when `auth` is given (with
/// impersonation of the mailbox), else Basic with `mailbox` and `password`.
pub fn open_ews_source(
    url: &str,
    mailbox: &str,
    auth: Option<&CloudAuth>,
    password: Option<&Secret>,
) -> Result<EwsSource> {
    let http = oauth::http_client()?;
    match (auth, password) {
        (Some(auth), _) => {
            let tokens = oauth::token_cache(auth, mailbox, oauth::SCOPE_EWS, http.clone())?;
            let client = ApiClient::new("ews", http, tokens, RetryPolicy::default());
            Ok(EwsSource::new(
                client,
                EwsAuth::Bearer,
                EwsOptions::new(url, mailbox, true),
            ))
        }
        (None, Some(password)) => {
            let client = ApiClient::without_tokens("ews", http, RetryPolicy::default());
            Ok(EwsSource::new(
                client,
                EwsAuth::Basic {
                    user: mailbox.to_string(),
                    password: password.clone(),
                },
                EwsOptions::new(url, mailbox, false),
            ))
        }
        (None, None) => Err(Error::backend(
            "ews",
            ErrorKind::InvalidInput,
            "EWS needs a password (--source-password-env/--source-password-file) or an app registration (--source-credentials)",
        )),
    }
}
