//! The Gmail API source.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use legacyflo_core::source::{FolderInfo, MessageStream, Position, SourceCapabilities};
use legacyflo_core::{
    Error, ErrorKind, Filter, Flag, FolderPath, Message, Result, Source, SourceEvent, SourceItem,
};
use reqwest::StatusCode;
use tokio::sync::{Mutex, OnceCell};
use tracing::{debug, warn};

use super::api::{
    HistoryList, Label, LabelList, MessageList, Profile, RawMessage, classify, decode_raw,
};
use super::batch::{self, MAX_BATCH};
use crate::cloud::{ApiClient, QuotaLimiter, Verdict};

/// Quota units of the calls made (Gmail's published costs).
pub mod cost {
    /// `labels.list`.
    pub const LABELS_LIST: u64 = 1;
    /// `messages.list`.
    pub const MESSAGES_LIST: u64 = 5;
    /// `users.getProfile`.
    pub const GET_PROFILE: u64 = 1;
    /// `users.history.list`.
    pub const HISTORY_LIST: u64 = 2;
    /// `messages.get` (each part of a batch counts).
    pub const MESSAGES_GET: u64 = 5;
}

/// Folder of messages with no folder label (archived mail).
pub const ALL_MAIL: &str = "All Mail";

/// Settings of a [`GmailSource`].
#[derive(Clone, Debug)]
pub struct GmailOptions {
    /// Base URL of the API (`https://gmail.googleapis.com`); the batch endpoint is
    /// `{api_url}/batch/gmail/v1`.
    pub api_url: String,
    /// The mailbox (the service account acts as it; `me` in paths).
    pub user: String,
    /// Quota units per window for this user (Gmail: 15,000 per minute).
    pub quota_units: u64,
    /// The quota window.
    pub quota_window: Duration,
    /// `messages.get` per batch (at most 50).
    pub batch_size: usize,
    /// Batches in flight per folder stream.
    pub batches_in_flight: usize,
    /// Attempts per batch part before the stream fails with a retryable error.
    pub max_attempts: u32,
}

impl GmailOptions {
    /// Options for `user` at Google's API (or `api_url`) with Gmail's per-user quota.
    pub fn new(user: impl Into<String>, api_url: Option<&str>) -> GmailOptions {
        GmailOptions {
            api_url: api_url
                .unwrap_or(super::GMAIL_URL)
                .trim_end_matches('/')
                .to_string(),
            user: user.into(),
            quota_units: 15_000,
            quota_window: Duration::from_secs(60),
            batch_size: MAX_BATCH,
            batches_in_flight: 2,
            max_attempts: 8,
        }
    }
}

/// Which folder each message of a date window lands in.
#[derive(Debug, Default)]
struct Index {
    /// Folder -> ids, sorted by (length, id): Gmail ids grow with time.
    folders: BTreeMap<FolderPath, Vec<String>>,
    /// The mailbox's history id before the listing: `history.list` from it finds all
    /// mail added since.
    history_id: Option<String>,
}

type WindowKey = (Option<i64>, Option<i64>);

/// A Gmail mailbox read through the Gmail API.
///
/// Every message is migrated once, into one folder (the rule is in the module docs of
/// [`crate::gmail`]), with all of its labels in [`Message::labels`]. Spam and Trash are
/// not read. Positions are Gmail message ids: a folder streams in id order, which is
/// arrival order, so resuming (or re-running later) yields what follows, new mail included.
/// The last message of a folder's listing also carries the mailbox's history id
/// (`ID|history=H`): a stream started after such a position asks `history.list` for the
/// messages added since instead of listing the mailbox again; when Gmail no longer has that
/// history (404) it lists as usual, with the same result.
pub struct GmailSource {
    client: ApiClient,
    opts: GmailOptions,
    quota: Arc<QuotaLimiter>,
    labels: OnceCell<Vec<Label>>,
    index: Mutex<HashMap<WindowKey, Arc<Index>>>,
}

impl std::fmt::Debug for GmailSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GmailSource({})", self.opts.user)
    }
}

fn enc(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

fn protocol(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend("gmail", ErrorKind::Protocol, format!("{what}: {e}"))
}

/// The folder a label stands for, if it is a folder label.
fn label_folder(l: &Label) -> Option<FolderPath> {
    match l.id.as_str() {
        "INBOX" => Some(FolderPath::inbox()),
        "SENT" => Some(FolderPath::new(["Sent"])),
        "DRAFT" => Some(FolderPath::new(["Drafts"])),
        _ if l.kind.as_deref() == Some("user") => {
            let p = FolderPath::parse(&l.name, '/');
            (!p.is_root()).then_some(p)
        }
        _ => None,
    }
}

/// Folder labels in priority order: INBOX, user labels by name, SENT, DRAFT.
fn folder_labels(labels: &[Label]) -> Vec<(&Label, FolderPath)> {
    let mut user: Vec<&Label> = labels
        .iter()
        .filter(|l| l.kind.as_deref() == Some("user"))
        .collect();
    user.sort_by_key(|l| (l.name.to_lowercase(), l.name.clone()));
    let sys = |id: &str| labels.iter().find(|l| l.id == id);
    sys("INBOX")
        .into_iter()
        .chain(user)
        .chain(sys("SENT"))
        .chain(sys("DRAFT"))
        .filter_map(|l| label_folder(l).map(|p| (l, p)))
        .collect()
}

fn id_order(a: &String, b: &String) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

impl GmailSource {
    /// A source over `client` with `opts`.
    pub fn new(client: ApiClient, opts: GmailOptions) -> GmailSource {
        GmailSource {
            quota: Arc::new(QuotaLimiter::new(opts.quota_units, opts.quota_window)),
            client,
            opts,
            labels: OnceCell::new(),
            index: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client (its counters show throttling and re-authentication).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// The quota limiter.
    pub fn quota(&self) -> &QuotaLimiter {
        &self.quota
    }

    fn users_path(&self) -> String {
        // The path part of the API URL, for batch inner requests.
        let after_scheme = self
            .opts
            .api_url
            .split_once("://")
            .map_or(self.opts.api_url.as_str(), |(_, r)| r);
        let prefix = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        format!("{prefix}/gmail/v1/users/{}", enc(&self.opts.user))
    }

    fn users_url(&self) -> String {
        format!(
            "{}/gmail/v1/users/{}",
            self.opts.api_url,
            enc(&self.opts.user)
        )
    }

    async fn get_json(&self, what: &str, url: &str, units: u64) -> Result<Bytes> {
        self.quota.acquire(units).await;
        Ok(self
            .client
            .send(what, |http, t| http.get(url).bearer_auth(t), classify)
            .await?
            .body)
    }

    async fn labels(&self) -> Result<&Vec<Label>> {
        self.labels
            .get_or_try_init(|| async {
                let body = self
                    .get_json(
                        "labels.list",
                        &format!("{}/labels", self.users_url()),
                        cost::LABELS_LIST,
                    )
                    .await?;
                let list: LabelList =
                    serde_json::from_slice(&body).map_err(|e| protocol("labels.list", e))?;
                Ok::<_, Error>(list.labels)
            })
            .await
    }

    /// The folder of a message with `label_ids` by the folder rule; `None` for Spam and
    /// Trash.
    fn folder_of_labels(&self, labels: &[Label], label_ids: &[String]) -> Option<FolderPath> {
        let has = |l: &str| label_ids.iter().any(|x| x == l);
        if has("SPAM") || has("TRASH") {
            return None;
        }
        Some(
            folder_labels(labels)
                .into_iter()
                .find(|(l, _)| has(&l.id))
                .map_or_else(|| FolderPath::new([ALL_MAIL]), |(_, p)| p),
        )
    }

    /// Messages added since history id `start`, with their folders, and the current
    /// history id; `None` when Gmail no longer keeps that history (404).
    async fn added_since(
        &self,
        start: &str,
    ) -> Result<Option<(Vec<(String, FolderPath)>, String)>> {
        let labels = self.labels().await?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut current = start.to_string();
        loop {
            let mut url = format!(
                "{}/history?startHistoryId={}&historyTypes=messageAdded&maxResults=500",
                self.users_url(),
                enc(start)
            );
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", enc(t)));
            }
            let body = match self
                .get_json("history.list", &url, cost::HISTORY_LIST)
                .await
            {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(user = %self.opts.user, "history expired: listing again");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let page: HistoryList =
                serde_json::from_slice(&body).map_err(|e| protocol("history.list", e))?;
            for rec in page.history {
                for a in rec.messages_added {
                    if let Some(f) = self.folder_of_labels(labels, &a.message.label_ids) {
                        out.push((a.message.id, f));
                    }
                }
            }
            if let Some(h) = page.history_id {
                current = h;
            }
            match page.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(Some((out, current))),
            }
        }
    }

    /// Every id of `label` (all mail but Spam and Trash when `None`) matching `q`.
    async fn list_ids(&self, label: Option<&str>, q: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/messages?maxResults=500", self.users_url());
            if let Some(l) = label {
                url.push_str(&format!("&labelIds={}", enc(l)));
            }
            if !q.is_empty() {
                url.push_str(&format!("&q={}", enc(q)));
            }
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", enc(t)));
            }
            let body = self
                .get_json("messages.list", &url, cost::MESSAGES_LIST)
                .await?;
            let page: MessageList =
                serde_json::from_slice(&body).map_err(|e| protocol("messages.list", e))?;
            ids.extend(page.messages.into_iter().map(|m| m.id));
            match page.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(ids),
            }
        }
    }

    async fn index(&self, filter: &Filter) -> Result<Arc<Index>> {
        let key = (
            filter.since_instant().map(|t| t.timestamp()),
            filter.before_instant().map(|t| t.timestamp()),
        );
        let mut cache = self.index.lock().await;
        if let Some(i) = cache.get(&key) {
            return Ok(i.clone());
        }
        // `after:` is exclusive; the engine re-checks the exact window.
        let mut q = Vec::new();
        if let Some(s) = key.0 {
            q.push(format!("after:{}", s - 1));
        }
        if let Some(b) = key.1 {
            q.push(format!("before:{b}"));
        }
        let q = q.join(" ");
        let labels = self.labels().await?;
        // Before the listing, so that nothing added during it is missed by history.list.
        let profile = self
            .get_json(
                "users.getProfile",
                &format!("{}/profile", self.users_url()),
                cost::GET_PROFILE,
            )
            .await?;
        let profile: Profile =
            serde_json::from_slice(&profile).map_err(|e| protocol("users.getProfile", e))?;
        let mut owner: HashMap<String, FolderPath> = HashMap::new();
        for (label, folder) in folder_labels(labels) {
            for id in self.list_ids(Some(&label.id), &q).await? {
                owner.entry(id).or_insert_with(|| folder.clone());
            }
        }
        for id in self.list_ids(None, &q).await? {
            owner
                .entry(id)
                .or_insert_with(|| FolderPath::new([ALL_MAIL]));
        }
        let mut index = Index {
            history_id: Some(profile.history_id),
            ..Index::default()
        };
        for (id, folder) in owner {
            index.folders.entry(folder).or_default().push(id);
        }
        for ids in index.folders.values_mut() {
            ids.sort_by(id_order);
        }
        debug!(user = %self.opts.user, folders = index.folders.len(), "gmail index built");
        let index = Arc::new(index);
        cache.insert(key, index.clone());
        Ok(index)
    }

    fn message_of(&self, m: RawMessage, folder: &FolderPath) -> SourceEvent {
        let position = m.id.clone();
        let Some(raw) = m.raw.as_deref() else {
            return SourceEvent::Unreadable {
                source_id: m.id,
                position,
                reason: "messages.get returned no `raw` field".into(),
            };
        };
        let bytes = match decode_raw(raw) {
            Ok(b) => b,
            Err(e) => {
                return SourceEvent::Unreadable {
                    source_id: m.id,
                    position,
                    reason: format!("`raw` is not base64url: {e}"),
                };
            }
        };
        let names: HashMap<&str, &str> = self
            .labels
            .get()
            .map(|ls| {
                ls.iter()
                    .map(|l| (l.id.as_str(), l.name.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let mut msg = Message::new(bytes, folder.clone(), m.id.clone());
        let has = |l: &str| m.label_ids.iter().any(|x| x == l);
        if !has("UNREAD") {
            msg.flags.push(Flag::Seen);
        }
        if has("STARRED") {
            msg.flags.push(Flag::Flagged);
        }
        if has("DRAFT") {
            msg.flags.push(Flag::Draft);
        }
        msg.internal_date = m
            .internal_date
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        msg.labels = m
            .label_ids
            .iter()
            .filter(|l| l.as_str() != "UNREAD")
            .map(|l| names.get(l.as_str()).map_or(l.clone(), |n| n.to_string()))
            .collect();
        SourceEvent::Message(SourceItem {
            message: msg,
            position,
        })
    }

    /// Whether the listed message `id` is gone from the mailbox: `messages.get` of it
    /// alone (not in a batch) answers 404.
    async fn is_gone(&self, id: &str) -> Result<bool> {
        let url = format!("{}/messages/{}?format=minimal", self.users_url(), enc(id));
        match self
            .get_json("messages.get", &url, cost::MESSAGES_GET)
            .await
        {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// `messages.get?format=raw` of `ids` through HTTP batch; the events come back in
    /// `ids` order, one for each id. Parts that are throttled, fail, are missing from the
    /// answer or answer for another message are sent again (up to
    /// [`GmailOptions::max_attempts`] batches); a part answering 404 is checked alone and
    /// is [`SourceEvent::Expunged`] when the message is really gone. What still fails after
    /// the attempts is [`SourceEvent::Unreadable`] with the reason, except throttling (the
    /// mailbox's quota, not the message's fault): that ends the stream with a retryable
    /// error. A failed batch request (the network, the credentials) ends it too.
    async fn fetch_batch(&self, ids: Vec<String>, folder: FolderPath) -> Result<Vec<SourceEvent>> {
        let mut done: Vec<Option<SourceEvent>> = ids.iter().map(|_| None).collect();
        // Why each id is not done yet: (throttled, reason).
        let mut why: Vec<(bool, String)> = ids.iter().map(|_| (false, String::new())).collect();
        let mut attempt = 0u32;
        loop {
            let pending: Vec<usize> = (0..ids.len()).filter(|i| done[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            let paths: Vec<String> = pending
                .iter()
                .map(|&i| format!("{}/messages/{}?format=raw", self.users_path(), enc(&ids[i])))
                .collect();
            self.quota
                .acquire(cost::MESSAGES_GET * paths.len() as u64)
                .await;
            let boundary = format!("batch_legacyflo_{}", chrono::Utc::now().timestamp_micros());
            let body = batch::request_body(&boundary, &paths);
            let url = format!("{}/batch/gmail/v1", self.opts.api_url);
            let ct = format!("multipart/mixed; boundary={boundary}");
            let answer = self
                .client
                .send(
                    "batch messages.get",
                    |http, t| {
                        http.post(&url)
                            .bearer_auth(t)
                            .header(reqwest::header::CONTENT_TYPE, ct.as_str())
                            .body(body.clone())
                    },
                    classify,
                )
                .await?;
            let rct = answer
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let parts = batch::boundary_of(rct)
                .ok_or_else(|| format!("the batch answer is `{rct}`, not multipart"))
                .and_then(|rb| batch::parse_response(&rb, &answer.body));
            let unanswered = match &parts {
                Ok(_) => "the batch answer has no part for it".to_string(),
                Err(e) => format!("the batch answer cannot be read: {e}"),
            };
            let mut answered = vec![false; ids.len()];
            let mut not_found = Vec::new();
            let mut wait: Option<Duration> = None;
            let mut reauth = false;
            for p in parts.unwrap_or_default() {
                let Some(&i) = pending.get(p.index) else {
                    continue;
                };
                if done[i].is_some() || answered[i] {
                    continue;
                }
                answered[i] = true;
                let verdict = if p.status == StatusCode::UNAUTHORIZED {
                    reauth = true;
                    Verdict::Transient("401".into())
                } else {
                    let mut h = reqwest::header::HeaderMap::new();
                    if let Some(v) = p
                        .retry_after
                        .as_deref()
                        .and_then(|v| reqwest::header::HeaderValue::from_str(v).ok())
                    {
                        h.insert(reqwest::header::RETRY_AFTER, v);
                    }
                    classify(p.status, &h, &p.body)
                };
                match verdict {
                    Verdict::Ok => match serde_json::from_slice::<RawMessage>(&p.body) {
                        Ok(m) if m.id == ids[i] => done[i] = Some(self.message_of(m, &folder)),
                        Ok(m) => {
                            why[i] = (
                                false,
                                format!("the batch answered for message `{}` instead", m.id),
                            );
                        }
                        Err(e) => {
                            why[i] = (false, format!("messages.get answer is not a message: {e}"));
                        }
                    },
                    Verdict::Throttled(d, reason) => {
                        self.client
                            .stats()
                            .throttled
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        wait = wait.max(d).or(Some(Duration::ZERO));
                        why[i] = (true, reason);
                    }
                    Verdict::Transient(reason) => {
                        self.client
                            .stats()
                            .transient
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        why[i] = (false, reason);
                    }
                    Verdict::Fail(ErrorKind::NotFound, reason) => {
                        why[i] = (false, reason);
                        not_found.push(i);
                    }
                    Verdict::Fail(
                        kind @ (ErrorKind::Unauthenticated | ErrorKind::PermissionDenied),
                        reason,
                    ) => {
                        return Err(Error::backend(
                            "gmail",
                            kind,
                            format!("messages.get {}: {reason}", ids[i]),
                        ));
                    }
                    Verdict::Fail(_, reason) => {
                        done[i] = Some(SourceEvent::Unreadable {
                            source_id: ids[i].clone(),
                            position: ids[i].clone(),
                            reason: format!("messages.get: {reason}"),
                        });
                    }
                }
            }
            for &i in &pending {
                if !answered[i] {
                    why[i] = (false, unanswered.clone());
                }
            }
            // Listed, then 404: deleted meanwhile, or a glitch of the batch? Ask alone.
            for i in not_found {
                if self.is_gone(&ids[i]).await? {
                    debug!(user = %self.opts.user, id = %ids[i], "listed message deleted meanwhile");
                    done[i] = Some(SourceEvent::Expunged {
                        source_id: ids[i].clone(),
                        position: ids[i].clone(),
                    });
                } else {
                    why[i] = (
                        false,
                        "messages.get in a batch answered 404, but the message exists".to_string(),
                    );
                }
            }
            if let (true, Some(tokens)) = (reauth, self.client.tokens()) {
                let (_, g) = tokens.token_with_generation().await?;
                tokens.invalidate(g).await;
            }
            if done.iter().all(Option::is_some) {
                break;
            }
            if attempt >= self.opts.max_attempts.max(1) {
                let left: Vec<usize> = (0..ids.len()).filter(|i| done[*i].is_none()).collect();
                if let Some(&i) = left.iter().find(|&&i| why[i].0) {
                    return Err(Error::backend(
                        "gmail",
                        ErrorKind::RateLimited,
                        format!(
                            "batch messages.get: parts still throttled after {attempt} attempts: {}",
                            why[i].1
                        ),
                    ));
                }
                for i in left {
                    warn!(user = %self.opts.user, id = %ids[i], reason = %why[i].1, "message not delivered; reported");
                    done[i] = Some(SourceEvent::Unreadable {
                        source_id: ids[i].clone(),
                        position: ids[i].clone(),
                        reason: format!(
                            "listed, but not delivered after {attempt} attempts: {}",
                            why[i].1
                        ),
                    });
                }
                break;
            }
            let backoff = Duration::from_millis(250u64 << attempt.min(8));
            let d = match wait {
                Some(d) if d > Duration::ZERO => d,
                _ => backoff,
            }
            .min(Duration::from_secs(120));
            let reason = pending
                .iter()
                .find(|&&i| done[i].is_none())
                .map(|&i| why[i].1.clone())
                .unwrap_or_default();
            warn!(user = %self.opts.user, %reason, wait = ?d, "retrying batch parts");
            tokio::time::sleep(d).await;
        }
        Ok(done.into_iter().flatten().collect())
    }
}

/// Adds `|history=H` to the position of the event of message `tag.0`.
fn tag_last(mut ev: SourceEvent, tag: Option<&(String, String)>) -> SourceEvent {
    let Some((id, h)) = tag else { return ev };
    match &mut ev {
        SourceEvent::Message(item) if &item.position == id => {
            item.position = format!("{id}|history={h}");
        }
        SourceEvent::Unreadable { position, .. } | SourceEvent::Expunged { position, .. }
            if position == id =>
        {
            *position = format!("{id}|history={h}");
        }
        _ => {}
    }
    ev
}

#[async_trait]
impl Source for GmailSource {
    fn kind(&self) -> &str {
        "gmail"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            filters_dates: true,
            concurrent_folders: false,
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        let labels = self.labels().await?;
        let mut out: Vec<FolderInfo> = folder_labels(labels)
            .into_iter()
            .map(|(_, p)| FolderInfo::new(p))
            .collect();
        out.push(FolderInfo::new(FolderPath::new([ALL_MAIL])));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        Ok(out)
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let (last, start) = match after.map(|p| p.split_once("|history=")) {
            Some(Some((id, h))) if !h.is_empty() => (Some(id.to_string()), Some(h.to_string())),
            Some(_) => (after.cloned(), None),
            None => (None, None),
        };
        let added = match &start {
            Some(h) => self.added_since(h).await?,
            None => None,
        };
        let (mut ids, history) = match added {
            Some((added, current)) => {
                let mut ids: Vec<String> = added
                    .into_iter()
                    .filter(|(_, f)| f == folder)
                    .map(|(id, _)| id)
                    .collect();
                ids.sort_by(id_order);
                ids.dedup();
                (ids, Some(current))
            }
            None => {
                let index = self.index(filter).await?;
                (
                    index.folders.get(folder).cloned().unwrap_or_default(),
                    index.history_id.clone(),
                )
            }
        };
        if let Some(p) = &last {
            ids.retain(|id| id_order(id, p) == std::cmp::Ordering::Greater);
        }
        // The last message of the folder carries the history id for the next run.
        let tag = ids.last().cloned().zip(history);
        let chunks: Vec<Vec<String>> = ids
            .chunks(self.opts.batch_size.clamp(1, MAX_BATCH))
            .map(<[String]>::to_vec)
            .collect();
        let folder = folder.clone();
        let s = futures::stream::iter(chunks)
            .map(move |c| self.fetch_batch(c, folder.clone()))
            .buffered(self.opts.batches_in_flight.max(1))
            .flat_map(move |r| match r {
                Ok(events) => futures::stream::iter(
                    events
                        .into_iter()
                        .map(|e| Ok(tag_last(e, tag.as_ref())))
                        .collect::<Vec<_>>(),
                ),
                Err(e) => futures::stream::iter(vec![Err(e)]),
            });
        let mut failed = false;
        let s = s.take_while(move |r| {
            let go = !failed;
            failed |= r.is_err();
            futures::future::ready(go)
        });
        Ok(Box::pin(s))
    }
}
