//! Microsoft Graph JSON shapes and how answers are classified.

use std::time::Duration;

use legacyflo_core::ErrorKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::cloud::{Verdict, retry_after};

/// `GET …/mailFolders` and `…/childFolders` pages.
#[derive(Debug, Deserialize)]
pub struct FolderPage {
    /// The folders.
    pub value: Vec<MailFolder>,
    /// The next page, if any.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// A `mailFolder` resource (the properties used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailFolder {
    /// Its id.
    pub id: String,
    /// Its name.
    pub display_name: String,
    /// How many child folders it has.
    #[serde(default)]
    pub child_folder_count: u64,
    /// How many items it holds.
    pub total_item_count: Option<u64>,
}

/// A `message` resource with the `$select`ed properties.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageMeta {
    /// Its id.
    pub id: String,
    /// When it was received (ISO 8601, UTC).
    pub received_date_time: Option<String>,
    /// Read state.
    #[serde(default)]
    pub is_read: bool,
    /// Whether it is a draft.
    #[serde(default)]
    pub is_draft: bool,
    /// The follow-up flag.
    pub flag: Option<FollowupFlag>,
    /// Outlook categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// In a delta page: set when the message left the folder.
    #[serde(rename = "@removed", default)]
    pub removed: Option<serde_json::Value>,
}

/// `GET …/messages/delta` pages.
#[derive(Debug, Deserialize)]
pub struct DeltaPage {
    /// Messages added or changed (and removed, with `@removed`).
    pub value: Vec<MessageMeta>,
    /// The next page of this round, if any.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// On the last page: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// A `followupFlag`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowupFlag {
    /// `notFlagged`, `complete` or `flagged`.
    pub flag_status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
}

/// `code: message` of a Graph error body, or the status.
pub fn error_text(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => format!(
            "HTTP {}: {}: {}",
            status.as_u16(),
            error.code.unwrap_or_default(),
            error.message.unwrap_or_default()
        ),
        Err(_) => format!("HTTP {status}"),
    }
}

/// Graph's throttling rules: 429 and 503 (and 504) are retried after `Retry-After` (a
/// second when absent), other 5xx with backoff; 404 is not found, 403 permission denied.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Ok;
    }
    let text = error_text(status, body);
    match status.as_u16() {
        429 | 503 | 504 => Verdict::Throttled(
            Some(retry_after(headers).unwrap_or(Duration::from_secs(1))),
            text,
        ),
        500..=599 => Verdict::Transient(text),
        // 410: a delta token Graph no longer knows (the caller lists the folder again).
        404 | 410 => Verdict::Fail(ErrorKind::NotFound, text),
        401 => Verdict::Fail(ErrorKind::Unauthenticated, text),
        403 => Verdict::Fail(ErrorKind::PermissionDenied, text),
        400 => Verdict::Fail(ErrorKind::InvalidInput, text),
        _ => Verdict::Fail(ErrorKind::Protocol, text),
    }
}
