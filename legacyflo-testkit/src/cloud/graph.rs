//! A Microsoft Graph server for Outlook mail: `mailFolders` and `childFolders` (paged by
//! `@odata.nextLink`), `mailFolders/{id}/messages` with `$select`, `$filter` on
//! `receivedDateTime` (`ge`/`gt`/`lt`/`le`, joined by `and`), `$orderby=receivedDateTime`,
//! `$top` and `$skip` in `@odata.nextLink`, and `messages/{id}/$value`. Limits: requests per
//! window per mailbox and 4 concurrent requests per mailbox, answered with 429,
//! `Retry-After` and the documented error body; optional injected 429s and 503s, and
//! scripted faults of `$value` ([`GraphFaults`]) and folder display names
//! ([`GraphConfig::display_names`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use legacyflo_core::{Flag, FolderPath, Message};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Counters, Running, StoredMessage, Window, received_of, serve, verify_bearer};

/// Scope the server requires.
pub const SCOPE: &str = "https://graph.microsoft.com/.default";

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// The mailbox (UPN) served.
    pub mailbox: String,
    /// Requests per window per mailbox (Graph: 10,000 per 10 minutes).
    pub requests_per_window: u64,
    /// The window.
    pub window: Duration,
    /// Concurrent requests per mailbox (Graph: 4).
    pub concurrency: u64,
    /// Largest page (`$top` is capped to it).
    pub max_page: usize,
    /// Every n-th request gets 429 with `Retry-After: 1`; 0 = never.
    pub throttle_every: u64,
    /// Every n-th request gets 503 with `Retry-After: 1`; 0 = never.
    pub unavailable_every: u64,
    /// At most this many injected answers in all.
    pub inject_max: u64,
    /// Display names the server reports instead of a seeded folder's last segment
    /// (`("B", "A")` makes two sibling folders both named `A`).
    pub display_names: Vec<(String, String)>,
}

/// Faults a test injects into message downloads.
#[derive(Debug, Default)]
pub struct GraphFaults {
    /// Ids still listed but deleted: `$value` and `GET messages/{id}` answer 404, as when
    /// a user deletes a message between the listing and the download.
    pub gone: HashSet<String>,
    /// Ids whose `$value` answers 500 every time.
    pub fail: HashSet<String>,
    /// Ids whose next `$value` answers 404 once, although the message exists.
    pub not_found_once: HashSet<String>,
}

impl GraphConfig {
    /// Graph's limits for `mailbox`, pages of up to 1000, no injection.
    pub fn new(mailbox: &str) -> GraphConfig {
        GraphConfig {
            mailbox: mailbox.to_string(),
            requests_per_window: 10_000,
            window: Duration::from_secs(600),
            concurrency: 4,
            max_page: 1000,
            throttle_every: 0,
            unavailable_every: 0,
            inject_max: 0,
            display_names: Vec::new(),
        }
    }
}

struct Folder {
    id: String,
    name: String,
    parent: Option<String>,
}

/// The messages (appended only: a message's index + 1 is its change number, which delta
/// tokens count).
struct Store {
    messages: Vec<StoredMessage>,
    folder_of: HashMap<String, String>,
    by_id: HashMap<String, usize>,
}

/// Shared state of a Graph server.
pub struct GraphState {
    /// Scripted faults of message downloads.
    pub faults: std::sync::Mutex<GraphFaults>,
    config: GraphConfig,
    base: std::sync::OnceLock<String>,
    folders: Vec<Folder>,
    store: std::sync::RwLock<Store>,
    window: Mutex<Window>,
    in_flight: AtomicU64,
    calls: AtomicU64,
    injected: AtomicU64,
    /// What was served and refused.
    pub counters: Arc<Counters>,
}

/// A running Graph server.
pub struct GraphServer {
    /// The server.
    pub running: Running,
    /// Its state.
    pub state: Arc<GraphState>,
}

impl GraphServer {
    /// The base URL to give as `--source-api-url` (`…/v1.0`).
    pub fn url(&self) -> String {
        format!("{}/v1.0", self.running.base)
    }
    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// The ids of the stored messages, in the order they were seeded.
    pub fn ids(&self) -> Vec<String> {
        let store = self.state.store.read().expect("store lock");
        store.messages.iter().map(|m| m.id.clone()).collect()
    }

    /// Delivers `m` into its folder, which must exist (new mail between two runs).
    pub fn deliver(&self, m: &Message) {
        let mut parent: Option<String> = None;
        for seg in m.folder.segments() {
            let f = self
                .state
                .folders
                .iter()
                .find(|f| f.parent == parent && &f.name == seg)
                .expect("deliver into an existing folder");
            parent = Some(f.id.clone());
        }
        let fid = parent.expect("a folder");
        let mut store = self.state.store.write().expect("store lock");
        let i = store.messages.len();
        let id = format!("AAMkAGMsg{:06}-{}=", i, i * 31 % 97);
        store.folder_of.insert(id.clone(), fid);
        store.by_id.insert(id.clone(), i);
        store.messages.push(StoredMessage {
            id,
            folder: m.folder.clone(),
            raw: m.raw.clone(),
            received: received_of(m),
            flags: m.flags.clone(),
        });
    }
}

/// Starts a server holding `messages` in their folders (a folder per path segment, made
/// as needed; `extra_folders` adds empty ones, e.g. `Calendar`).
pub async fn graph_server(
    config: GraphConfig,
    messages: &[Message],
    extra_folders: &[&str],
) -> GraphServer {
    let mut folders: Vec<Folder> = Vec::new();
    let mut ids: HashMap<FolderPath, String> = HashMap::new();
    let mut ensure = |path: &FolderPath, folders: &mut Vec<Folder>| -> String {
        let mut parent: Option<String> = None;
        let mut cur = FolderPath::root();
        for seg in path.segments() {
            cur = cur.child(seg.clone());
            let id = ids
                .entry(cur.clone())
                .or_insert_with(|| {
                    let id = format!("AAMkAGFolder{:04}=", folders.len() + 1);
                    folders.push(Folder {
                        id: id.clone(),
                        name: seg.clone(),
                        parent: parent.clone(),
                    });
                    id
                })
                .clone();
            parent = Some(id);
        }
        parent.unwrap_or_default()
    };
    for f in extra_folders {
        ensure(&FolderPath::parse(f, '/'), &mut folders);
    }
    let mut stored = Vec::new();
    let mut folder_of = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let fid = ensure(&m.folder, &mut folders);
        let id = format!("AAMkAGMsg{:06}-{}=", i, i * 31 % 97);
        folder_of.insert(id.clone(), fid);
        stored.push(StoredMessage {
            id,
            folder: m.folder.clone(),
            raw: m.raw.clone(),
            received: received_of(m),
            flags: m.flags.clone(),
        });
    }
    let by_id = stored
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.clone(), i))
        .collect();
    for f in &mut folders {
        let path = ids
            .iter()
            .find(|(_, id)| **id == f.id)
            .map(|(p, _)| p.join("/"));
        if let Some((_, name)) = config
            .display_names
            .iter()
            .find(|(p, _)| Some(p) == path.as_ref())
        {
            f.name = name.clone();
        }
    }
    let state = Arc::new(GraphState {
        faults: Default::default(),
        window: Mutex::new(Window::new(config.requests_per_window, config.window)),
        config,
        base: Default::default(),
        folders,
        store: std::sync::RwLock::new(Store {
            messages: stored,
            folder_of,
            by_id,
        }),
        in_flight: 0.into(),
        calls: 0.into(),
        injected: 0.into(),
        counters: Arc::new(Counters::default()),
    });
    let app = Router::new()
        .route("/v1.0/users/{user}/mailFolders", get(top_folders))
        .route(
            "/v1.0/users/{user}/mailFolders/{id}/childFolders",
            get(child_folders),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{id}/messages",
            get(folder_messages),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{id}/messages/delta",
            get(folder_delta),
        )
        .route("/v1.0/users/{user}/messages/{id}", get(message_meta))
        .route(
            "/v1.0/users/{user}/messages/{id}/{value}",
            get(message_value),
        )
        .with_state(state.clone());
    let running = serve(app).await;
    let _ = state.base.set(format!("{}/v1.0", running.base));
    GraphServer { running, state }
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({"error": {"code": code, "message": message, "innerError": {
                "date": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                "request-id": "00000000-0000-0000-0000-000000000000",
                "client-request-id": "00000000-0000-0000-0000-000000000000",
            }}}),
        ),
    )
        .into_response()
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Releases the in-flight slot when dropped.
struct Slot<'a>(&'a AtomicU64);
impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GraphState {
    async fn admit(&self, h: &HeaderMap, user: &str) -> Result<Slot<'_>, Response> {
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Err(why) = verify_bearer(auth, SCOPE) {
            self.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
            let msg = if why.contains("Expired") {
                "Lifetime validation failed, the token is expired.".to_string()
            } else {
                format!("Access token validation failure. {why}")
            };
            return Err(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                &msg,
            ));
        }
        if !user.eq_ignore_ascii_case(&self.config.mailbox) {
            return Err(graph_error(
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                &format!("The requested user '{user}' is invalid."),
            ));
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let slot = Slot(&self.in_flight);
        self.counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if now > self.config.concurrency {
            self.counters.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(with_retry_after(
                graph_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                ),
                1,
            ));
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let inject = |every: u64| every > 0 && n.is_multiple_of(every);
        if (inject(self.config.throttle_every) || inject(self.config.unavailable_every))
            && self.injected.fetch_add(1, Ordering::SeqCst) < self.config.inject_max
        {
            if inject(self.config.throttle_every) {
                self.counters.throttled.fetch_add(1, Ordering::SeqCst);
                return Err(with_retry_after(
                    graph_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TooManyRequests",
                        "Too many requests.",
                    ),
                    1,
                ));
            }
            self.counters.failed.fetch_add(1, Ordering::SeqCst);
            return Err(with_retry_after(
                graph_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "Service is temporarily unavailable.",
                ),
                1,
            ));
        }
        if let Err(wait) = self.window.lock().await.try_spend(1) {
            self.counters.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(with_retry_after(
                graph_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxRequests limit.",
                ),
                wait.as_secs_f64().ceil().max(1.0) as u64,
            ));
        }
        Ok(slot)
    }

    fn base(&self) -> String {
        self.base.get().cloned().unwrap_or_default()
    }

    fn folder_json(&self, f: &Folder) -> Value {
        let children = self
            .folders
            .iter()
            .filter(|c| c.parent.as_deref() == Some(&f.id))
            .count();
        let total = self
            .store
            .read()
            .map(|s| s.folder_of.values().filter(|v| **v == f.id).count())
            .unwrap_or(0);
        json!({
            "id": f.id, "displayName": f.name,
            "parentFolderId": f.parent.clone().unwrap_or_else(|| "AAMkAGRoot=".into()),
            "childFolderCount": children, "unreadItemCount": 0, "totalItemCount": total,
            "sizeInBytes": 0, "isHidden": false,
        })
    }

    fn folder_page(
        &self,
        user: &str,
        parent: Option<&str>,
        q: &HashMap<String, String>,
        path: &str,
    ) -> Response {
        let list: Vec<&Folder> = self
            .folders
            .iter()
            .filter(|f| f.parent.as_deref() == parent)
            .collect();
        let top = q
            .get("$top")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(10)
            .clamp(1, self.config.max_page);
        let skip = q
            .get("$skip")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let value: Vec<Value> = list
            .iter()
            .skip(skip)
            .take(top)
            .map(|f| self.folder_json(f))
            .collect();
        let mut body = json!({
            "@odata.context": format!("{}/$metadata#users('{user}')/mailFolders", self.base()),
            "value": value,
        });
        if skip + top < list.len() {
            body["@odata.nextLink"] = Value::String(format!(
                "{}/users/{}/{path}?$top={top}&$skip={}",
                self.base(),
                urlencoding::encode(user),
                skip + top
            ));
        }
        Json(body).into_response()
    }
}

async fn top_folders(
    State(st): State<Arc<GraphState>>,
    Path(user): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    st.folder_page(&user, None, &q, "mailFolders")
}

async fn child_folders(
    State(st): State<Arc<GraphState>>,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !st.folders.iter().any(|f| f.id == id) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    st.folder_page(
        &user,
        Some(&id),
        &q,
        &format!("mailFolders/{}/childFolders", urlencoding::encode(&id)),
    )
}

/// `receivedDateTime ge 2020-01-01T00:00:00Z and receivedDateTime lt …`.
fn parse_filter(f: &str) -> Result<Vec<(String, DateTime<Utc>)>, String> {
    let mut out = Vec::new();
    for clause in f.split(" and ") {
        let parts: Vec<&str> = clause.split_whitespace().collect();
        let [prop, op, value] = parts.as_slice() else {
            return Err(format!("Invalid filter clause: {clause}"));
        };
        if *prop != "receivedDateTime" || !matches!(*op, "ge" | "gt" | "le" | "lt") {
            return Err(format!("Unsupported filter clause: {clause}"));
        }
        let t =
            DateTime::parse_from_rfc3339(value).map_err(|_| format!("Invalid date: {value}"))?;
        out.push((op.to_string(), t.with_timezone(&Utc)));
    }
    Ok(out)
}

async fn folder_messages(
    State(st): State<Arc<GraphState>>,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !st.folders.iter().any(|f| f.id == id) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    let clauses = match q.get("$filter").map(|f| parse_filter(f)).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidUrlQueryFilter", &e),
    };
    if let Some(o) = q.get("$orderby") {
        let first = o
            .split(',')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if first != "receivedDateTime" || clauses.is_empty() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "InefficientFilter",
                "The restriction or sort order is too complex for this operation.",
            );
        }
    }
    let store = st.store.read().expect("store lock");
    let mut list: Vec<&StoredMessage> = store
        .messages
        .iter()
        .filter(|m| store.folder_of.get(&m.id) == Some(&id))
        .filter(|m| {
            clauses.iter().all(|(op, t)| match op.as_str() {
                "ge" => m.received >= *t,
                "gt" => m.received > *t,
                "le" => m.received <= *t,
                _ => m.received < *t,
            })
        })
        .collect();
    list.sort_by_key(|m| m.received);
    let top = q
        .get("$top")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, st.config.max_page);
    let skip = q
        .get("$skip")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let value: Vec<Value> = list
        .iter()
        .skip(skip)
        .take(top)
        .map(|m| {
            json!({
                "@odata.etag": "W/\"CQAAABYAAAA\"",
                "id": m.id,
                "receivedDateTime": m.received.to_rfc3339_opts(SecondsFormat::Secs, true),
                "isRead": m.flags.contains(&Flag::Seen),
                "isDraft": m.flags.contains(&Flag::Draft),
                "flag": {"flagStatus": if m.flags.contains(&Flag::Flagged) { "flagged" } else { "notFlagged" }},
                "categories": [],
            })
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('{user}')/mailFolders('{id}')/messages", st.base()),
        "value": value,
    });
    if skip + top < list.len() {
        let mut next = format!(
            "{}/users/{}/mailFolders/{}/messages?$top={top}&$skip={}",
            st.base(),
            urlencoding::encode(&user),
            urlencoding::encode(&id),
            skip + top
        );
        for k in ["$select", "$filter", "$orderby"] {
            if let Some(v) = q.get(k) {
                next.push_str(&format!("&{k}={}", urlencoding::encode(v)));
            }
        }
        body["@odata.nextLink"] = Value::String(next);
    }
    Json(body).into_response()
}

async fn message_value(
    State(st): State<Arc<GraphState>>,
    Path((user, id, value)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    if value != "$value" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unsupported segment.",
        );
    }
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (gone, fail, not_found) = {
        let mut f = st.faults.lock().expect("faults lock");
        (
            f.gone.contains(&id),
            f.fail.contains(&id),
            f.not_found_once.remove(&id),
        )
    };
    if fail {
        return graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrorInternalServerError",
            "An internal server error occurred. The operation failed.",
        );
    }
    let raw = {
        let store = st.store.read().expect("store lock");
        store.by_id.get(&id).map(|&i| store.messages[i].raw.clone())
    };
    let Some(raw) = raw.filter(|_| !gone && !not_found) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(raw))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET messages/{id}` (`$select` ignored): the message's id, or 404.
async fn message_meta(
    State(st): State<Arc<GraphState>>,
    Path((user, id)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let gone = st.faults.lock().expect("faults lock").gone.contains(&id);
    let known = st.store.read().expect("store lock").by_id.contains_key(&id);
    if gone || !known {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    Json(json!({ "@odata.etag": "W/\"CQAAABYAAAA\"", "id": id })).into_response()
}

/// `mailFolders/{id}/messages/delta`: the first round lists the folder (`$filter` on
/// `receivedDateTime` and `$select` as for `messages`; pages by `$skiptoken`, size from
/// `Prefer: odata.maxpagesize`), its last page carries `@odata.deltaLink`; a call with
/// `$deltatoken` lists the messages added since that token. An unknown token is `410 Gone`
/// with `SyncStateNotFound`, as Graph answers an expired one.
async fn folder_delta(
    State(st): State<Arc<GraphState>>,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    let _slot = match st.admit(&h, &user).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !st.folders.iter().any(|f| f.id == id) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    let clauses = match q.get("$filter").map(|f| parse_filter(f)).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidUrlQueryFilter", &e),
    };
    let store = st.store.read().expect("store lock");
    let since = match q.get("$deltatoken") {
        None => 0,
        Some(t) => match t.strip_prefix("dt-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= store.messages.len() => n,
            _ => {
                return graph_error(
                    StatusCode::GONE,
                    "SyncStateNotFound",
                    "The sync state generation is not found.",
                );
            }
        },
    };
    let list: Vec<&StoredMessage> = store.messages[since..]
        .iter()
        .filter(|m| store.folder_of.get(&m.id) == Some(&id))
        .filter(|m| {
            clauses.iter().all(|(op, t)| match op.as_str() {
                "ge" => m.received >= *t,
                "gt" => m.received > *t,
                "le" => m.received <= *t,
                _ => m.received < *t,
            })
        })
        .collect();
    let top = h
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, st.config.max_page);
    let skip = q
        .get("$skiptoken")
        .and_then(|v| v.strip_prefix("sk-"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let value: Vec<Value> = list
        .iter()
        .skip(skip)
        .take(top)
        .map(|m| {
            json!({
                "@odata.type": "#microsoft.graph.message",
                "@odata.etag": "W/\"CQAAABYAAAA\"",
                "id": m.id,
                "receivedDateTime": m.received.to_rfc3339_opts(SecondsFormat::Secs, true),
                "isRead": m.flags.contains(&Flag::Seen),
                "isDraft": m.flags.contains(&Flag::Draft),
                "flag": {"flagStatus": if m.flags.contains(&Flag::Flagged) { "flagged" } else { "notFlagged" }},
                "categories": [],
            })
        })
        .collect();
    let base = format!(
        "{}/users/{}/mailFolders/{}/messages/delta",
        st.base(),
        urlencoding::encode(&user),
        urlencoding::encode(&id)
    );
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(message)", st.base()),
        "value": value,
    });
    if skip + top < list.len() {
        let mut next = format!("{base}?$skiptoken=sk-{}", skip + top);
        if since > 0 {
            next.push_str(&format!("&$deltatoken=dt-{since}"));
        }
        for k in ["$select", "$filter"] {
            if let Some(v) = q.get(k) {
                next.push_str(&format!("&{k}={}", urlencoding::encode(v)));
            }
        }
        body["@odata.nextLink"] = Value::String(next);
    } else {
        let mut link = format!("{base}?$deltatoken=dt-{}", store.messages.len());
        for k in ["$select", "$filter"] {
            if let Some(v) = q.get(k) {
                link.push_str(&format!("&{k}={}", urlencoding::encode(v)));
            }
        }
        body["@odata.deltaLink"] = Value::String(link);
    }
    Json(body).into_response()
}
