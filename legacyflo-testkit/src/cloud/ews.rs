//! An Exchange Web Services server at `/EWS/Exchange.asmx`: SOAP 1.1 envelopes with
//! `ResponseMessages` (`ResponseClass`, `ResponseCode`), `GetFolder` of distinguished
//! folders, `FindFolder` (deep traversal from `msgfolderroot`, `IndexedPageFolderView`),
//! `FindItem` (`IndexedPageItemView` with `IndexedPagingOffset`, `TotalItemsInView`,
//! `IncludesLastItemInRange`; `Restriction` on `item:DateTimeReceived`; ascending sort)
//! and `GetItem` with base64 `MimeContent`.
//!
//! Auth: HTTP Basic against the configured login, or a bearer token (scope
//! `https://outlook.office365.com/.default`), which must come with an
//! `ExchangeImpersonation` header naming the mailbox, as Exchange requires of app-only
//! tokens; bad credentials get 401. Throttling: every n-th request (optional) gets the
//! `ErrorServerBusy` fault (HTTP 500) with `BackOffMilliseconds`, and every request before
//! that back-off has passed gets it again. Scripted `GetItem` faults ([`EwsFaults`]): items
//! deleted after the listing, left out of the answer, failing, or a spurious
//! `ErrorItemNotFound`; and folder display names ([`EwsConfig::display_names`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use legacyflo_core::{Flag, FolderPath, Message};
use tokio::sync::Mutex;

use super::xml::{self, Node, escape};
use super::{Counters, Running, StoredMessage, received_of, serve, verify_bearer};

/// Scope the server requires of bearer tokens.
pub const SCOPE: &str = "https://outlook.office365.com/.default";

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct EwsConfig {
    /// The mailbox's primary SMTP address.
    pub mailbox: String,
    /// The Basic login and password accepted (`None`: Basic is refused).
    pub basic: Option<(String, String)>,
    /// Largest page (`MaxEntriesReturned` is capped to it, as Exchange's EWSFindCountLimit).
    pub max_page: usize,
    /// Every n-th request gets `ErrorServerBusy`; 0 = never.
    pub busy_every: u64,
    /// The `BackOffMilliseconds` sent with it.
    pub back_off_ms: u64,
    /// At most this many injected busy answers in all (those within a back-off included).
    pub inject_max: u64,
    /// Display names the server reports instead of a seeded folder's name (`("B", "A")`
    /// makes two sibling folders both named `A`).
    pub display_names: Vec<(String, String)>,
}

impl EwsConfig {
    /// `mailbox` with Basic login `mailbox`/`password`, pages of up to 1000, no
    /// throttling.
    pub fn new(mailbox: &str, password: &str) -> EwsConfig {
        EwsConfig {
            mailbox: mailbox.to_string(),
            basic: Some((mailbox.to_string(), password.to_string())),
            max_page: 1000,
            busy_every: 0,
            back_off_ms: 200,
            inject_max: 0,
            display_names: Vec::new(),
        }
    }
}

struct Folder {
    id: String,
    parent: String,
    name: String,
    class: &'static str,
    element: &'static str,
    distinguished: Option<&'static str>,
}

/// Faults a test injects into `GetItem`.
#[derive(Debug, Default)]
pub struct EwsFaults {
    /// Items still listed but deleted: `GetItem` answers `ErrorItemNotFound`.
    pub gone: HashSet<String>,
    /// Items left out of every `GetItem` answer (no response message for them).
    pub omit: HashSet<String>,
    /// Items answered with the error `ErrorMimeContentConversionFailed` every time.
    pub fail: HashSet<String>,
    /// Items whose next `GetItem` answers `ErrorItemNotFound` once, although they exist.
    pub not_found_once: HashSet<String>,
}

/// Shared state of an EWS server.
pub struct EwsState {
    /// Scripted faults of `GetItem`.
    pub faults: std::sync::Mutex<EwsFaults>,
    config: EwsConfig,
    folders: Vec<Folder>,
    messages: Vec<(String, StoredMessage)>,
    calls: AtomicU64,
    injected: AtomicU64,
    busy_until: Mutex<Option<(Instant, Instant)>>,
    /// What was served and refused.
    pub counters: Arc<Counters>,
    /// Requests that came while a back-off was running (a client that honours
    /// `BackOffMilliseconds` sends none).
    pub early: AtomicU64,
}

/// A running EWS server.
pub struct EwsServer {
    /// The server.
    pub running: Running,
    /// Its state.
    pub state: Arc<EwsState>,
}

impl EwsServer {
    /// The endpoint to give as `--source-api-url`.
    pub fn url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.running.base)
    }
    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }
    /// The ids of the stored messages, in the order they were seeded.
    pub fn ids(&self) -> Vec<String> {
        self.state
            .messages
            .iter()
            .map(|(_, m)| m.id.clone())
            .collect()
    }
}

const ROOT: &str = "AAMkRoot-msgfolderroot=";

/// Starts a server holding `messages` in their folders (made as needed, class
/// `IPF.Note`), beside the built-in Calendar, Contacts, Tasks and Deleted Items (with a
/// subfolder `Old` holding one message that must never be read).
pub async fn ews_server(config: EwsConfig, messages: &[Message]) -> EwsServer {
    let mut folders: Vec<Folder> = Vec::new();
    let add = |folders: &mut Vec<Folder>,
               parent: &str,
               name: &str,
               class: &'static str,
               element: &'static str,
               distinguished: Option<&'static str>|
     -> String {
        if let Some(f) = folders
            .iter()
            .find(|f| f.parent == parent && f.name == name)
        {
            return f.id.clone();
        }
        let id = format!("AAMkFolder{:04}=", folders.len() + 1);
        folders.push(Folder {
            id: id.clone(),
            parent: parent.to_string(),
            name: name.to_string(),
            class,
            element,
            distinguished,
        });
        id
    };
    add(
        &mut folders,
        ROOT,
        "Calendar",
        "IPF.Appointment",
        "CalendarFolder",
        Some("calendar"),
    );
    add(
        &mut folders,
        ROOT,
        "Contacts",
        "IPF.Contact",
        "ContactsFolder",
        Some("contacts"),
    );
    add(
        &mut folders,
        ROOT,
        "Tasks",
        "IPF.Task",
        "TasksFolder",
        Some("tasks"),
    );
    let deleted = add(
        &mut folders,
        ROOT,
        "Deleted Items",
        "IPF.Note",
        "Folder",
        Some("deleteditems"),
    );
    let old = add(&mut folders, &deleted, "Old", "IPF.Note", "Folder", None);
    let mut stored = Vec::new();
    let mut push = |fid: String, m: &Message, i: usize| {
        stored.push((
            fid,
            StoredMessage {
                id: format!("AAMkItem{:06}+{}/=", i, i * 37 % 101),
                folder: m.folder.clone(),
                raw: m.raw.clone(),
                received: received_of(m),
                flags: m.flags.clone(),
            },
        ));
    };
    for (i, m) in messages.iter().enumerate() {
        let mut parent = ROOT.to_string();
        for seg in m.folder.segments() {
            parent = add(&mut folders, &parent, seg, "IPF.Note", "Folder", None);
        }
        push(parent, m, i);
    }
    let trash = Message::new(
        bytes::Bytes::from_static(b"Subject: deleted\r\n\r\nnever migrated\r\n"),
        FolderPath::new(["Deleted Items".to_string(), "Old".to_string()]),
        "trash",
    );
    push(old, &trash, messages.len());
    for f in &mut folders {
        if let Some((_, name)) = config.display_names.iter().find(|(n, _)| *n == f.name) {
            f.name = name.clone();
        }
    }
    let state = Arc::new(EwsState {
        faults: Default::default(),
        config,
        folders,
        messages: stored,
        calls: 0.into(),
        injected: 0.into(),
        busy_until: Mutex::new(None),
        counters: Arc::new(Counters::default()),
        early: 0.into(),
    });
    let app = Router::new()
        .route("/EWS/Exchange.asmx", post(handle))
        .with_state(state.clone());
    let running = serve(app).await;
    EwsServer { running, state }
}

const ENV_OPEN: &str = r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2017_07_11" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" xmlns="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body>"#;

fn soap(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("{ENV_OPEN}{body}</s:Body></s:Envelope>"),
    )
        .into_response()
}

fn fault(code: &str, text: &str, extra: &str) -> Response {
    soap(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            r#"<s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:{code}</faultcode><faultstring xml:lang="en-US">{}</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{code}</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">{}</e:Message>{extra}</detail></s:Fault>"#,
            escape(text),
            escape(text)
        ),
    )
}

fn unauthorized(state: &EwsState) -> Response {
    state.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"mail.example.test\"",
        )],
        "",
    )
        .into_response()
}

const M: &str = r#"xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types""#;

fn ok_msg(op: &str, inner: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{op}ResponseMessage>"#
    )
}

fn err_msg(op: &str, code: &str, text: &str) -> String {
    format!(
        r#"<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:{op}ResponseMessage>"#,
        escape(text)
    )
}

fn wrap(op: &str, msgs: &str) -> Response {
    soap(
        StatusCode::OK,
        format!(
            r#"<m:{op}Response {M}><m:ResponseMessages>{msgs}</m:ResponseMessages></m:{op}Response>"#
        ),
    )
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn handle(State(state): State<Arc<EwsState>>, headers: HeaderMap, body: Body) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Ok(doc) = xml::parse(&body) else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation.",
            "",
        );
    };
    let impersonated = doc
        .child("Header")
        .and_then(|h| h.child("ExchangeImpersonation"))
        .and_then(|i| i.find("PrimarySmtpAddress"))
        .map(|p| p.text.trim().to_string());
    // Authentication first, as IIS does.
    let bearer = match auth {
        Some(a) if a.starts_with("Basic ") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(a.trim_start_matches("Basic ").trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let ok = matches!((&decoded, &state.config.basic), (Some(d), Some((u, p))) if *d == format!("{u}:{p}"));
            if !ok {
                return unauthorized(&state);
            }
            false
        }
        Some(a) if a.starts_with("Bearer ") => {
            if verify_bearer(Some(a), SCOPE).is_err() {
                return unauthorized(&state);
            }
            true
        }
        _ => return unauthorized(&state),
    };
    state.counters.requests.fetch_add(1, Ordering::SeqCst);
    // Throttling: a running back-off refuses everything; every n-th request starts one.
    {
        let mut until = state.busy_until.lock().await;
        let now = Instant::now();
        let injected = state.injected.load(Ordering::SeqCst);
        let running = until.is_some_and(|(_, u)| now < u);
        // Requests already in flight when the back-off began are not the client's fault: on
        // a loaded machine they can arrive well after it began, so the first half of the
        // window (at least 50 ms) is given to them; a client that ignores the hint and
        // retries on its own schedule still lands in the second half.
        let grace = Duration::from_millis((state.config.back_off_ms / 2).max(50));
        if until.is_some_and(|(s, u)| now < u && now > s + grace) {
            state.early.fetch_add(1, Ordering::SeqCst);
        }
        let n = state.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let starts = state.config.busy_every > 0
            && n % state.config.busy_every == 0
            && injected < state.config.inject_max;
        if running || starts {
            state.injected.fetch_add(1, Ordering::SeqCst);
            state.counters.throttled.fetch_add(1, Ordering::SeqCst);
            let ms = state.config.back_off_ms;
            if starts && !running {
                *until = Some((now, now + Duration::from_millis(ms)));
            }
            let left = until.map_or(ms, |(_, u)| {
                u.saturating_duration_since(now).as_micros().div_ceil(1000) as u64
            });
            return fault(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                &format!(
                    r#"<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">{left}</t:Value></t:MessageXml>"#
                ),
            );
        }
    }
    let version = doc
        .child("Header")
        .and_then(|h| h.child("RequestServerVersion"))
        .and_then(|v| v.attr("Version"));
    if !matches!(version, Some(v) if v.starts_with("Exchange20") || v == "V2015_10_05" || v == "V2016_01_06")
    {
        return fault(
            "ErrorInvalidServerVersion",
            "The specified server version is invalid.",
            "",
        );
    }
    match (&impersonated, bearer) {
        (None, true) => {
            return fault(
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
                "",
            );
        }
        (Some(who), _) if !who.eq_ignore_ascii_case(&state.config.mailbox) => {
            return fault(
                "ErrorNonExistentMailbox",
                &format!("The SMTP address {who} has no mailbox associated with it."),
                "",
            );
        }
        _ => {}
    }
    let Some(op) = doc.child("Body").and_then(|b| b.children.first()) else {
        return fault(
            "ErrorSchemaValidation",
            "The request failed schema validation.",
            "",
        );
    };
    match op.name.as_str() {
        "GetFolder" => get_folder(&state, op),
        "FindFolder" => find_folder(&state, op),
        "FindItem" => find_item(&state, op),
        "GetItem" => get_item(&state, op),
        other => fault(
            "ErrorInvalidRequest",
            &format!("{other} is not served here."),
            "",
        ),
    }
}

fn paging(view: Option<&Node>, max_page: usize) -> (usize, usize) {
    let offset = view
        .and_then(|v| v.attr("Offset"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let max = view
        .and_then(|v| v.attr("MaxEntriesReturned"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(max_page)
        .clamp(1, max_page);
    (offset, max)
}

fn folder_xml(f: &Folder) -> String {
    format!(
        r#"<t:{el}><t:FolderId Id="{}" ChangeKey="AQAAAA=="/><t:ParentFolderId Id="{}" ChangeKey="AQAAAA=="/><t:FolderClass>{}</t:FolderClass><t:DisplayName>{}</t:DisplayName></t:{el}>"#,
        escape(&f.id),
        escape(&f.parent),
        f.class,
        escape(&f.name),
        el = f.element
    )
}

fn get_folder(state: &EwsState, op: &Node) -> Response {
    let mut msgs = String::new();
    for d in op
        .child("FolderIds")
        .map(|f| f.children.as_slice())
        .unwrap_or(&[])
    {
        let found = match d.name.as_str() {
            "DistinguishedFolderId" => state
                .folders
                .iter()
                .find(|f| f.distinguished.is_some() && f.distinguished == d.attr("Id")),
            _ => state
                .folders
                .iter()
                .find(|f| Some(f.id.as_str()) == d.attr("Id")),
        };
        match found {
            Some(f) => msgs.push_str(&ok_msg(
                "GetFolder",
                &format!("<m:Folders>{}</m:Folders>", folder_xml(f)),
            )),
            None => msgs.push_str(&err_msg(
                "GetFolder",
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.",
            )),
        }
    }
    wrap("GetFolder", &msgs)
}

fn find_folder(state: &EwsState, op: &Node) -> Response {
    let parent = op.find("DistinguishedFolderId").and_then(|d| d.attr("Id"));
    if parent != Some("msgfolderroot") || op.attr("Traversal") != Some("Deep") {
        return wrap(
            "FindFolder",
            &err_msg(
                "FindFolder",
                "ErrorInvalidRequest",
                "This server only serves deep traversal from msgfolderroot.",
            ),
        );
    }
    let (offset, max) = paging(op.child("IndexedPageFolderView"), state.config.max_page);
    let total = state.folders.len();
    let page: Vec<&Folder> = state.folders.iter().skip(offset).take(max).collect();
    let end = offset.min(total) + page.len();
    let inner: String = page.iter().map(|f| folder_xml(f)).collect();
    wrap(
        "FindFolder",
        &ok_msg(
            "FindFolder",
            &format!(
                r#"<m:RootFolder IndexedPagingOffset="{end}" TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Folders>{inner}</t:Folders></m:RootFolder>"#,
                end >= total
            ),
        ),
    )
}

/// Whether `t` passes restriction node `r`; `Err` for what is not understood.
fn passes(r: &Node, t: DateTime<Utc>) -> Result<bool, String> {
    let constant = || -> Result<DateTime<Utc>, String> {
        if r.child("FieldURI").and_then(|f| f.attr("FieldURI")) != Some("item:DateTimeReceived") {
            return Err("only item:DateTimeReceived is served".to_string());
        }
        let v = r
            .find("Constant")
            .and_then(|c| c.attr("Value"))
            .ok_or("no Constant")?;
        DateTime::parse_from_rfc3339(v)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| format!("bad date {v}: {e}"))
    };
    Ok(match r.name.as_str() {
        "And" => {
            for c in &r.children {
                if !passes(c, t)? {
                    return Ok(false);
                }
            }
            true
        }
        "IsGreaterThanOrEqualTo" => t >= constant()?,
        "IsGreaterThan" => t > constant()?,
        "IsLessThan" => t < constant()?,
        "IsLessThanOrEqualTo" => t <= constant()?,
        other => return Err(format!("{other} is not served")),
    })
}

fn find_item(state: &EwsState, op: &Node) -> Response {
    let Some(fid) = op.find("FolderId").and_then(|f| f.attr("Id")) else {
        return wrap(
            "FindItem",
            &err_msg("FindItem", "ErrorInvalidRequest", "No ParentFolderIds."),
        );
    };
    if !state.folders.iter().any(|f| f.id == fid) {
        return wrap(
            "FindItem",
            &err_msg(
                "FindItem",
                "ErrorFolderNotFound",
                "The specified folder could not be found in the store.",
            ),
        );
    }
    let restriction = op.child("Restriction").and_then(|r| r.children.first());
    let mut items: Vec<&StoredMessage> = Vec::new();
    for (f, m) in &state.messages {
        if f != fid {
            continue;
        }
        match restriction.map(|r| passes(r, m.received)) {
            Some(Err(e)) => {
                return wrap(
                    "FindItem",
                    &err_msg("FindItem", "ErrorInvalidRestriction", &e),
                );
            }
            Some(Ok(false)) => continue,
            _ => items.push(m),
        }
    }
    items.sort_by(|a, b| (a.received, &a.id).cmp(&(b.received, &b.id)));
    let (offset, max) = paging(op.child("IndexedPageItemView"), state.config.max_page);
    let total = items.len();
    let page: Vec<&&StoredMessage> = items.iter().skip(offset).take(max).collect();
    let end = offset.min(total) + page.len();
    let inner: String = page
        .iter()
        .map(|m| {
            format!(
                r#"<t:Message><t:ItemId Id="{}" ChangeKey="CQAAAA=="/><t:DateTimeReceived>{}</t:DateTimeReceived><t:IsDraft>{}</t:IsDraft><t:IsRead>{}</t:IsRead></t:Message>"#,
                escape(&m.id),
                iso(m.received),
                m.flags.contains(&Flag::Draft),
                m.flags.contains(&Flag::Seen)
            )
        })
        .collect();
    wrap(
        "FindItem",
        &ok_msg(
            "FindItem",
            &format!(
                r#"<m:RootFolder IndexedPagingOffset="{end}" TotalItemsInView="{total}" IncludesLastItemInRange="{}"><t:Items>{inner}</t:Items></m:RootFolder>"#,
                end >= total
            ),
        ),
    )
}

fn get_item(state: &EwsState, op: &Node) -> Response {
    let mime = op
        .find("IncludeMimeContent")
        .is_some_and(|n| n.text.trim() == "true");
    let mut msgs = String::new();
    for id in op
        .child("ItemIds")
        .map(|i| i.children.as_slice())
        .unwrap_or(&[])
    {
        let wanted = id.attr("Id").unwrap_or("").to_string();
        let (gone, omit, fail, not_found) = {
            let mut f = state.faults.lock().expect("faults lock");
            (
                f.gone.contains(&wanted),
                f.omit.contains(&wanted),
                f.fail.contains(&wanted),
                f.not_found_once.remove(&wanted),
            )
        };
        if omit {
            continue;
        }
        if fail {
            msgs.push_str(&err_msg(
                "GetItem",
                "ErrorMimeContentConversionFailed",
                "The MIME content conversion failed.",
            ));
            continue;
        }
        let found = state
            .messages
            .iter()
            .find(|(_, m)| m.id == wanted)
            .filter(|_| !gone && !not_found);
        match found {
            Some((_, m)) => {
                let content = if mime {
                    format!(
                        r#"<t:MimeContent CharacterSet="UTF-8">{}</t:MimeContent>"#,
                        base64::engine::general_purpose::STANDARD.encode(&m.raw)
                    )
                } else {
                    String::new()
                };
                msgs.push_str(&ok_msg(
                    "GetItem",
                    &format!(r#"<m:Items><t:Message>{content}<t:ItemId Id="{}" ChangeKey="CQAAAA=="/></t:Message></m:Items>"#, escape(&m.id)),
                ));
            }
            None => msgs.push_str(&err_msg(
                "GetItem",
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            )),
        }
    }
    wrap("GetItem", &msgs)
}
