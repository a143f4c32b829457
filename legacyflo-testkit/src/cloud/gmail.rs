//! A Gmail API server: `labels.list`, `messages.list` (paging by `pageToken`, `q` with
//! `after:`/`before:`, `labelIds`, Spam and Trash left out unless `includeSpamTrash`),
//! `messages.get?format=raw`, and HTTP batch at `/batch/gmail/v1` (at most 50 parts,
//! `multipart/mixed` in and out). Per-user quota in units per window (get 5, list 5,
//! labels.list 1; each batch part counts) answered with 403 `userRateLimitExceeded`;
//! optional injected 429s with `Retry-After`, and scripted faults of `messages.get`
//! ([`GmailFaults`]: parts left out of a batch answer, parts failing, a spurious 404, a
//! message deleted between the listing and the download).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use bytes::Bytes;
use legacyflo_core::{Flag, FolderPath, Message};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Counters, Running, StoredMessage, Window, received_of, serve, verify_bearer};

/// Scope the server requires.
pub const SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct GmailConfig {
    /// The mailbox (the token's `sub` must be it; `me` is it).
    pub user: String,
    /// Quota units per window.
    pub quota_units: u64,
    /// The quota window.
    pub quota_window: Duration,
    /// Largest `messages.list` page (Gmail: 500).
    pub max_page: usize,
    /// Every n-th API call (batch parts included) gets 429 with `Retry-After: 1`; 0 = never.
    pub throttle_every: u64,
    /// At most this many injected 429s.
    pub throttle_max: u64,
}

impl GmailConfig {
    /// Gmail's limits for `user`: 15,000 units a minute, pages of up to 500, no injection.
    pub fn new(user: &str) -> GmailConfig {
        GmailConfig {
            user: user.to_string(),
            quota_units: 15_000,
            quota_window: Duration::from_secs(60),
            max_page: 500,
            throttle_every: 0,
            throttle_max: 0,
        }
    }
}

struct Label {
    id: String,
    name: String,
    system: bool,
}

struct Stored {
    msg: StoredMessage,
    labels: Vec<String>,
    /// The history record that added it.
    history: u64,
}

/// Newest first, as Gmail lists.
struct Store {
    messages: Vec<Stored>,
    by_id: HashMap<String, usize>,
}

impl Store {
    fn new(messages: Vec<Stored>) -> Store {
        let by_id = messages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.msg.id.clone(), i))
            .collect();
        Store { messages, by_id }
    }
    /// The mailbox's current history id.
    fn history_id(&self) -> u64 {
        self.messages.first().map_or(1000, |s| s.history)
    }
}

/// Faults a test injects into `messages.get` batch parts.
#[derive(Debug, Default)]
pub struct GmailFaults {
    /// Ids whose part is left out of every batch answer.
    pub omit: HashSet<String>,
    /// Ids whose part answers 500 `backendError` every time.
    pub fail: HashSet<String>,
    /// Ids whose next part answers 404 once, although the message exists.
    pub not_found_once: HashSet<String>,
    /// Ids still listed but deleted: every `messages.get` of them answers 404, as when a
    /// user deletes a message between the listing and the download.
    pub gone: HashSet<String>,
}

/// Shared state of a Gmail server.
pub struct GmailState {
    /// Scripted faults of `messages.get`.
    pub faults: std::sync::Mutex<GmailFaults>,
    config: GmailConfig,
    labels: Vec<Label>,
    store: std::sync::RwLock<Store>,
    /// `history.list` with a `startHistoryId` below this answers 404 (history expired).
    pub history_floor: AtomicU64,
    quota: Mutex<Window>,
    injected: AtomicU64,
    calls: AtomicU64,
    /// What was served and refused.
    pub counters: Arc<Counters>,
}

/// A running Gmail API server.
pub struct GmailServer {
    /// The server.
    pub running: Running,
    /// Its state.
    pub state: Arc<GmailState>,
}

impl GmailServer {
    /// The base URL to give as `--source-api-url`.
    pub fn url(&self) -> String {
        self.running.base.clone()
    }
    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// The ids of the stored messages, oldest first.
    pub fn ids(&self) -> Vec<String> {
        let store = self.state.store.read().expect("store lock");
        store
            .messages
            .iter()
            .rev()
            .map(|s| s.msg.id.clone())
            .collect()
    }

    /// Delivers `m` (new mail between two runs): its folder becomes its label as in
    /// [`gmail_server`]; a user label must exist already. Recorded as a `messageAdded`
    /// history event.
    pub fn deliver(&self, m: &Message) {
        let mut ls = Vec::new();
        if let Some(l) = system_label(&m.folder) {
            ls.push(l.to_string());
        } else if m.folder.join("/") != "All Mail" && !m.folder.is_root() {
            let name = m.folder.join("/");
            let l = self
                .state
                .labels
                .iter()
                .find(|l| l.name == name)
                .expect("deliver under an existing label");
            ls.push(l.id.clone());
        }
        if !m.has_flag(&Flag::Seen) {
            ls.push("UNREAD".into());
        }
        let mut store = self.state.store.write().expect("store lock");
        let history = store.history_id() + 1;
        let n = store.messages.len() as u64 + 1_000_000;
        let mut messages = std::mem::take(&mut store.messages);
        messages.insert(
            0,
            Stored {
                msg: StoredMessage {
                    id: format!("{:016x}", 0x18a0_0000_0000_0000u64 + n * 7919),
                    folder: m.folder.clone(),
                    raw: m.raw.clone(),
                    received: received_of(m),
                    flags: m.flags.clone(),
                },
                labels: ls,
                history,
            },
        );
        *store = Store::new(messages);
    }
}

fn system_label(folder: &FolderPath) -> Option<&'static str> {
    match folder.join("/").as_str() {
        "INBOX" => Some("INBOX"),
        "Sent" => Some("SENT"),
        "Drafts" => Some("DRAFT"),
        "Spam" => Some("SPAM"),
        "Trash" => Some("TRASH"),
        _ => None,
    }
}

/// Starts a server holding `messages`: a message's folder becomes its label (INBOX, Sent,
/// Drafts, Spam and Trash become the system labels; `All Mail` means no label; other
/// paths become user labels named with `/`). Flags: no `\Seen` gives UNREAD, `\Flagged`
/// STARRED. `extra_labels` adds user labels to the message with that index.
pub async fn gmail_server(
    config: GmailConfig,
    messages: &[Message],
    extra_labels: &[(usize, &str)],
) -> GmailServer {
    let mut labels: Vec<Label> = [
        "INBOX",
        "SENT",
        "DRAFT",
        "SPAM",
        "TRASH",
        "UNREAD",
        "STARRED",
        "IMPORTANT",
        "CATEGORY_PERSONAL",
    ]
    .iter()
    .map(|id| Label {
        id: id.to_string(),
        name: id.to_string(),
        system: true,
    })
    .collect();
    let mut user_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut label_id = |name: &str, labels: &mut Vec<Label>| -> String {
        if let Some(id) = user_ids.get(name) {
            return id.clone();
        }
        let id = format!("Label_{}", user_ids.len() + 1);
        user_ids.insert(name.to_string(), id.clone());
        labels.push(Label {
            id: id.clone(),
            name: name.to_string(),
            system: false,
        });
        id
    };
    let mut stored = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let mut ls = Vec::new();
        if let Some(s) = system_label(&m.folder) {
            ls.push(s.to_string());
        } else if m.folder.join("/") != "All Mail" && !m.folder.is_root() {
            ls.push(label_id(&m.folder.join("/"), &mut labels));
        }
        for (j, extra) in extra_labels {
            if *j == i {
                ls.push(label_id(extra, &mut labels));
            }
        }
        if !m.has_flag(&Flag::Seen) {
            ls.push("UNREAD".into());
        }
        if m.has_flag(&Flag::Flagged) {
            ls.push("STARRED".into());
        }
        stored.push(Stored {
            msg: StoredMessage {
                // Ids grow with arrival, 16 hex digits.
                id: format!("{:016x}", 0x18a0_0000_0000_0000u64 + i as u64 * 7919),
                folder: m.folder.clone(),
                raw: m.raw.clone(),
                received: received_of(m),
                flags: m.flags.clone(),
            },
            labels: ls,
            history: 1000 + i as u64,
        });
    }
    stored.reverse();
    let state = Arc::new(GmailState {
        faults: Default::default(),
        quota: Mutex::new(Window::new(config.quota_units, config.quota_window)),
        config,
        labels,
        store: std::sync::RwLock::new(Store::new(stored)),
        history_floor: 0.into(),
        injected: 0.into(),
        calls: 0.into(),
        counters: Arc::new(Counters::default()),
    });
    let app = Router::new()
        .route("/gmail/v1/users/{user}/labels", get(labels_list))
        .route("/gmail/v1/users/{user}/messages", get(messages_list))
        .route("/gmail/v1/users/{user}/profile", get(profile))
        .route("/gmail/v1/users/{user}/history", get(history_list))
        .route("/gmail/v1/users/{user}/messages/{id}", get(messages_get))
        .route("/batch/gmail/v1", post(batch))
        .with_state(state.clone());
    GmailServer {
        running: serve(app).await,
        state,
    }
}

/// A Gmail error answer (`{"error":{"code","message","errors":[…],"status"}}`).
fn error(
    status: StatusCode,
    reason: &str,
    message: &str,
    rpc: &str,
) -> (StatusCode, Vec<(String, String)>, Value) {
    (
        status,
        Vec::new(),
        json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": if status.as_u16() == 401 { "global" } else { "usageLimits" }, "reason": reason}],
            "status": rpc,
        }}),
    )
}

type Answer = (StatusCode, Vec<(String, String)>, Value);

fn into_response(a: Answer) -> Response {
    let (status, headers, body) = a;
    let mut r = (status, Json(body)).into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

impl GmailState {
    /// Auth, user, injected throttling and quota for one call of `units`.
    async fn admit(&self, auth: Option<&str>, user: &str, units: u64) -> Result<(), Answer> {
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        if let Err(why) = verify_bearer(auth, SCOPE) {
            self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
            let _ = why;
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
            ));
        }
        let sub = verify_bearer(auth, SCOPE)
            .map(|c| c.sub)
            .unwrap_or_default();
        if user != "me" && user != self.config.user || sub != self.config.user {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Delegation denied for the requested user.",
                "PERMISSION_DENIED",
            ));
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.config.throttle_every > 0
            && n.is_multiple_of(self.config.throttle_every)
            && self.injected.fetch_add(1, Ordering::SeqCst) < self.config.throttle_max
        {
            self.counters.throttled.fetch_add(1, Ordering::SeqCst);
            let mut a = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimitExceeded",
                "Resource has been exhausted (e.g. check quota).",
                "RESOURCE_EXHAUSTED",
            );
            a.1.push(("retry-after".into(), "1".into()));
            return Err(a);
        }
        if self.quota.lock().await.try_spend(units).is_err() {
            self.counters.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(error(
                StatusCode::FORBIDDEN,
                "userRateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'gmail.googleapis.com' for consumer 'project_number:1'.",
                "PERMISSION_DENIED",
            ));
        }
        Ok(())
    }

    fn label_names(&self, ids: &[String]) -> Vec<String> {
        ids.to_vec()
    }

    fn get_message(&self, id: &str, format: Option<&str>) -> Answer {
        let gone = self.faults.lock().expect("faults lock").gone.contains(id);
        let store = self.store.read().expect("store lock");
        let Some(&i) = store.by_id.get(id).filter(|_| !gone) else {
            return (
                StatusCode::NOT_FOUND,
                Vec::new(),
                json!({"error": {"code": 404, "message": "Requested entity was not found.", "errors": [{"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}], "status": "NOT_FOUND"}}),
            );
        };
        let s = &store.messages[i];
        let mut v = json!({
            "id": s.msg.id,
            "threadId": s.msg.id,
            "labelIds": self.label_names(&s.labels),
            "snippet": "",
            "historyId": s.history.to_string(),
            "internalDate": s.msg.received.timestamp_millis().to_string(),
            "sizeEstimate": s.msg.raw.len(),
        });
        if format == Some("raw") {
            v["raw"] = Value::String(base64::engine::general_purpose::URL_SAFE.encode(&s.msg.raw));
        }
        (StatusCode::OK, Vec::new(), v)
    }
}

fn auth_of(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

async fn labels_list(
    State(st): State<Arc<GmailState>>,
    Path(user): Path<String>,
    h: HeaderMap,
) -> Response {
    if let Err(a) = st.admit(auth_of(&h), &user, 1).await {
        return into_response(a);
    }
    let labels: Vec<Value> = st
        .labels
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "name": l.name,
                "type": if l.system { "system" } else { "user" },
                "messageListVisibility": "show", "labelListVisibility": "labelShow",
            })
        })
        .collect();
    Json(json!({ "labels": labels })).into_response()
}

/// `after:`/`before:` terms (epoch seconds or YYYY/MM/DD) of a `q`.
fn parse_q(q: &str) -> Result<(Option<i64>, Option<i64>), String> {
    let mut after = None;
    let mut before = None;
    for term in q.split_whitespace() {
        let (k, v) = term
            .split_once(':')
            .ok_or(format!("unsupported term `{term}`"))?;
        let t = v.parse::<i64>().ok().or_else(|| {
            chrono::NaiveDate::parse_from_str(v, "%Y/%m/%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp())
        });
        let t = t.ok_or(format!("bad date in `{term}`"))?;
        match k {
            "after" => after = Some(t),
            "before" => before = Some(t),
            _ => return Err(format!("unsupported term `{term}`")),
        }
    }
    Ok((after, before))
}

async fn messages_list(
    State(st): State<Arc<GmailState>>,
    Path(user): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    h: HeaderMap,
) -> Response {
    if let Err(a) = st.admit(auth_of(&h), &user, 5).await {
        return into_response(a);
    }
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let labels: Vec<&str> = q
        .iter()
        .filter(|(a, _)| a == "labelIds")
        .map(|(_, v)| v.as_str())
        .collect();
    let include_spam_trash = get("includeSpamTrash") == Some("true");
    let max = get("maxResults")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 500)
        .min(st.config.max_page);
    let start = get("pageToken").map(|t| t.strip_prefix("p").and_then(|n| n.parse::<usize>().ok()));
    let start = match start {
        None => 0,
        Some(Some(n)) => n,
        Some(None) => {
            return into_response(error(
                StatusCode::BAD_REQUEST,
                "invalidArgument",
                "Invalid pageToken",
                "INVALID_ARGUMENT",
            ));
        }
    };
    let (after, before) = match parse_q(get("q").unwrap_or("")) {
        Ok(w) => w,
        Err(e) => {
            return into_response(error(
                StatusCode::BAD_REQUEST,
                "invalidArgument",
                &e,
                "INVALID_ARGUMENT",
            ));
        }
    };
    let store = st.store.read().expect("store lock");
    let matching: Vec<&Stored> = store
        .messages
        .iter()
        .filter(|s| labels.iter().all(|l| s.labels.iter().any(|x| x == l)))
        .filter(|s| include_spam_trash || !s.labels.iter().any(|l| l == "SPAM" || l == "TRASH"))
        .filter(|s| after.is_none_or(|a| s.msg.received.timestamp() > a))
        .filter(|s| before.is_none_or(|b| s.msg.received.timestamp() < b))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max)
        .map(|s| json!({"id": s.msg.id, "threadId": s.msg.id}))
        .collect();
    let mut body = json!({ "resultSizeEstimate": matching.len() });
    if !page.is_empty() {
        body["messages"] = Value::Array(page);
    }
    if start + max < matching.len() {
        body["nextPageToken"] = Value::String(format!("p{}", start + max));
    }
    Json(body).into_response()
}

async fn messages_get(
    State(st): State<Arc<GmailState>>,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    if let Err(a) = st.admit(auth_of(&h), &user, 5).await {
        return into_response(a);
    }
    into_response(st.get_message(&id, q.get("format").map(String::as_str)))
}

fn boundary_of(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == "boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The request lines of a multipart batch body, with their Content-IDs.
fn batch_requests(body: &str, boundary: &str) -> Vec<(Option<String>, String)> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    for part in body.split(delim.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches("\r\n");
        let (head, rest) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
        let cid = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-id")
                .then(|| v.trim().trim_matches(|c| c == '<' || c == '>').to_string())
        });
        let line = rest.lines().next().unwrap_or("").trim().to_string();
        out.push((cid, line));
    }
    out
}

async fn batch(State(st): State<Arc<GmailState>>, h: HeaderMap, body: Bytes) -> Response {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = ct
        .starts_with("multipart/mixed")
        .then(|| boundary_of(ct))
        .flatten()
    else {
        return into_response(error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Batch request must be multipart/mixed with a boundary.",
            "INVALID_ARGUMENT",
        ));
    };
    let text = String::from_utf8_lossy(&body);
    let reqs = batch_requests(&text, &boundary);
    if reqs.len() > 50 {
        return into_response(error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            &format!(
                "Inner request count exceeds the limit. Inner request count: {}, Limit: 50",
                reqs.len()
            ),
            "INVALID_ARGUMENT",
        ));
    }
    let out_boundary = format!(
        "batch_{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    let mut out = String::new();
    for (n, (cid, line)) in reqs.iter().enumerate() {
        let answer = match line
            .strip_prefix("GET ")
            .map(|r| r.split_whitespace().next().unwrap_or(""))
        {
            Some(target) => {
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                match segs.as_slice() {
                    ["gmail", "v1", "users", user, "messages", id] => {
                        let user = urlencoding::decode(user)
                            .map(|c| c.into_owned())
                            .unwrap_or_default();
                        let (omit, fail, not_found) = {
                            let mut f = st.faults.lock().expect("faults lock");
                            let id = id.to_string();
                            (
                                f.omit.contains(&id),
                                f.fail.contains(&id),
                                f.not_found_once.remove(&id),
                            )
                        };
                        if omit {
                            continue;
                        }
                        match st.admit(auth_of(&h), &user, 5).await {
                            Err(a) => a,
                            Ok(()) if fail => error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "backendError",
                                "Backend Error",
                                "INTERNAL",
                            ),
                            Ok(()) if not_found => error(
                                StatusCode::NOT_FOUND,
                                "notFound",
                                "Requested entity was not found.",
                                "NOT_FOUND",
                            ),
                            Ok(()) => {
                                let format =
                                    query.split('&').find_map(|kv| kv.strip_prefix("format="));
                                st.get_message(id, format)
                            }
                        }
                    }
                    _ => error(StatusCode::NOT_FOUND, "notFound", "Not Found", "NOT_FOUND"),
                }
            }
            None => error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "Only GET inner requests are served here.",
                "INVALID_ARGUMENT",
            ),
        };
        let (status, headers, json) = answer;
        let cid = cid.clone().unwrap_or_else(|| format!("item{}", n + 1));
        out.push_str(&format!("--{out_boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{cid}>\r\n\r\n"));
        out.push_str(&format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=UTF-8\r\nVary: Origin\r\nVary: X-Origin\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!("\r\n{json}\r\n"));
    }
    out.push_str(&format!("--{out_boundary}--\r\n"));
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/mixed; boundary={out_boundary}"),
        )
        .body(Body::from(out))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `users.getProfile`: the mailbox's address, counts and current `historyId`.
async fn profile(
    State(st): State<Arc<GmailState>>,
    Path(user): Path<String>,
    h: HeaderMap,
) -> Response {
    if let Err(a) = st.admit(auth_of(&h), &user, 1).await {
        return into_response(a);
    }
    let store = st.store.read().expect("store lock");
    Json(json!({
        "emailAddress": st.config.user,
        "messagesTotal": store.messages.len(),
        "threadsTotal": store.messages.len(),
        "historyId": store.history_id().to_string(),
    }))
    .into_response()
}

/// `users.history.list` (2 quota units): the `messageAdded` records after
/// `startHistoryId` (required), oldest first, paged by `maxResults`/`pageToken`, with
/// the current `historyId`; a start below the history kept is 404 `notFound`.
async fn history_list(
    State(st): State<Arc<GmailState>>,
    Path(user): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    h: HeaderMap,
) -> Response {
    if let Err(a) = st.admit(auth_of(&h), &user, 2).await {
        return into_response(a);
    }
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let Some(start) = get("startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
        return into_response(error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Invalid startHistoryId",
            "INVALID_ARGUMENT",
        ));
    };
    if start < st.history_floor.load(Ordering::SeqCst) {
        return into_response(error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Requested entity was not found.",
            "NOT_FOUND",
        ));
    }
    let max = get("maxResults")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 500)
        .min(st.config.max_page);
    let skip = get("pageToken")
        .and_then(|t| t.strip_prefix('h'))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let store = st.store.read().expect("store lock");
    let mut added: Vec<&Stored> = store
        .messages
        .iter()
        .filter(|s| s.history > start)
        .collect();
    added.sort_by_key(|s| s.history);
    let page: Vec<Value> = added
        .iter()
        .skip(skip)
        .take(max)
        .map(|s| {
            let m = json!({"id": s.msg.id, "threadId": s.msg.id, "labelIds": s.labels});
            json!({"id": s.history.to_string(), "messages": [m.clone()], "messagesAdded": [{"message": m}]})
        })
        .collect();
    let mut body = json!({ "historyId": store.history_id().to_string() });
    if !page.is_empty() {
        body["history"] = Value::Array(page);
    }
    if skip + max < added.len() {
        body["nextPageToken"] = Value::String(format!("h{}", skip + max));
    }
    Json(body).into_response()
}
