//! Gmail API JSON shapes and how answers are classified.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use legacyflo_core::ErrorKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::cloud::{Verdict, retry_after};

/// `labels.list`.
#[derive(Debug, Deserialize)]
pub struct LabelList {
    /// The labels (absent when there are none).
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// A label.
#[derive(Clone, Debug, Deserialize)]
pub struct Label {
    /// Its id (`INBOX`, `Label_12`).
    pub id: String,
    /// Its name; `/` separates nesting levels.
    pub name: String,
    /// `system` or `user`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// `messages.list` pages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    /// The ids (absent on an empty result).
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    /// The next page, if any.
    pub next_page_token: Option<String>,
}

/// An id in a listing.
#[derive(Debug, Deserialize)]
pub struct MessageRef {
    /// The message id.
    pub id: String,
}

/// `users.getProfile` (the fields used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The mailbox's current history id.
    pub history_id: String,
}

/// `users.history.list` pages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryList {
    /// The records (absent when there are none).
    #[serde(default)]
    pub history: Vec<HistoryRecord>,
    /// The next page, if any.
    pub next_page_token: Option<String>,
    /// The mailbox's current history id.
    pub history_id: Option<String>,
}

/// One history record (the part used).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    /// Messages added.
    #[serde(default)]
    pub messages_added: Vec<Added>,
}

/// A `messageAdded` event.
#[derive(Debug, Deserialize)]
pub struct Added {
    /// The message, with its labels.
    pub message: AddedMessage,
}

/// A message in a history record.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedMessage {
    /// Its id.
    pub id: String,
    /// Its labels when it was added.
    #[serde(default)]
    pub label_ids: Vec<String>,
}

/// `messages.get?format=raw`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMessage {
    /// The message id.
    pub id: String,
    /// Its labels.
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Milliseconds since the epoch, as a string.
    pub internal_date: Option<String>,
    /// The RFC 2822 message, base64url.
    pub raw: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorItem {
    reason: Option<String>,
}

/// base64url, padded or not, as Gmail sends `raw`.
pub fn decode_raw(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(s.trim())
}

/// The `reason`s and text of a Gmail error body.
pub fn error_parts(status: StatusCode, body: &[u8]) -> (Vec<String>, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let reasons: Vec<String> = error.errors.into_iter().filter_map(|e| e.reason).collect();
            let text = format!(
                "HTTP {}: {}{}",
                status.as_u16(),
                error.message.unwrap_or_default(),
                error.status.map(|s| format!(" ({s})")).unwrap_or_default()
            );
            (reasons, text)
        }
        Err(_) => (Vec::new(), format!("HTTP {status}")),
    }
}

/// Whether a 403's reasons are a quota limit (retried) rather than a permission error.
fn is_quota_reason(r: &str) -> bool {
    matches!(
        r,
        "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded" | "dailyLimitExceeded"
    )
}

/// Gmail's error rules: 429, and 403 with a rate-limit reason, are throttling (retried
/// after `Retry-After` or with backoff); 5xx are transient; other 4xx fail.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if status.is_success() {
        return Verdict::Ok;
    }
    let (reasons, text) = error_parts(status, body);
    let hint = retry_after(headers);
    match status.as_u16() {
        429 => Verdict::Throttled(hint, text),
        403 if reasons.iter().any(|r| is_quota_reason(r)) => {
            if reasons.iter().any(|r| r == "dailyLimitExceeded") {
                Verdict::Fail(ErrorKind::RateLimited, text)
            } else {
                Verdict::Throttled(hint, text)
            }
        }
        500..=599 => Verdict::Transient(text),
        404 => Verdict::Fail(ErrorKind::NotFound, text),
        401 => Verdict::Fail(ErrorKind::Unauthenticated, text),
        403 => Verdict::Fail(ErrorKind::PermissionDenied, text),
        400 => Verdict::Fail(ErrorKind::InvalidInput, text),
        _ => Verdict::Fail(ErrorKind::Protocol, text),
    }
}
