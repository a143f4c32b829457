//! The EWS source: folders by `FindFolder` (deep traversal from `msgfolderroot`),
//! messages by `FindItem` (indexed paging, restricted on `DateTimeReceived`), MIME by
//! `GetItem` with `IncludeMimeContent` in batches.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use legacyflo_core::request::Secret;
use legacyflo_core::source::{FolderInfo, MessageStream, Position, SourceCapabilities};
use legacyflo_core::{
    Error, ErrorKind, Filter, Flag, FolderPath, Message, Result, Source, SourceEvent, SourceItem,
};
use tokio::sync::OnceCell;
use tracing::debug;

use super::api::{self, classify, code_kind, response_messages};
use super::xml::{self, Node};
use crate::cloud::{ApiClient, Failed};

/// Distinguished folders the service does not migrate (no mail, or deleted mail); their
/// subfolders are skipped with them.
pub const SKIPPED_DISTINGUISHED: &[&str] = &["calendar", "contacts", "tasks", "deleteditems"];

/// How the source authenticates.
#[derive(Clone)]
pub enum EwsAuth {
    /// HTTP Basic with this login and password.
    Basic {
        /// The login.
        user: String,
        /// The password.
        password: Secret,
    },
    /// OAuth bearer tokens from the client's token cache (an app registration); the
    /// mailbox is reached by `ExchangeImpersonation`.
    Bearer,
}

impl std::fmt::Debug for EwsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EwsAuth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            EwsAuth::Bearer => write!(f, "Bearer"),
        }
    }
}

/// Settings of an [`EwsSource`].
#[derive(Clone, Debug)]
pub struct EwsOptions {
    /// The endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx`.
    pub url: String,
    /// The mailbox's primary SMTP address.
    pub mailbox: String,
    /// Send `ExchangeImpersonation` of the mailbox (needed with app tokens, or when the
    /// login is a service account with the ApplicationImpersonation role).
    pub impersonate: bool,
    /// `MaxEntriesReturned` of FindFolder and FindItem pages.
    pub page_size: u32,
    /// Items per `GetItem`.
    pub batch: usize,
    /// `GetItem` requests in flight at once.
    pub concurrency: usize,
}

impl EwsOptions {
    /// Options for `mailbox` at `url`: pages of 100, batches of 20, 2 in flight.
    pub fn new(url: impl Into<String>, mailbox: impl Into<String>, impersonate: bool) -> Self {
        EwsOptions {
            url: url.into(),
            mailbox: mailbox.into(),
            impersonate,
            page_size: 100,
            batch: 20,
            concurrency: 2,
        }
    }
}

/// An Exchange mailbox read through EWS.
///
/// Positions are `DateTimeReceived|ItemId` of the last message yielded; a folder streams
/// in `(DateTimeReceived, ItemId)` order, so a resume (or a later incremental run) yields
/// exactly the messages after it, including mail that arrived since.
pub struct EwsSource {
    client: ApiClient,
    auth: EwsAuth,
    opts: EwsOptions,
    folders: OnceCell<BTreeMap<FolderPath, EwsFolder>>,
}

/// A listed folder: its id, and what the listing noticed.
#[derive(Debug, Clone)]
struct EwsFolder {
    id: String,
    notes: Vec<String>,
}

/// Mailbox-wide error codes of a `GetItem` response message: they end the stream (the
/// credentials or the mailbox, not the item).
const MAILBOX_CODES: &[&str] = &[
    "ErrorImpersonateUserDenied",
    "ErrorImpersonationDenied",
    "ErrorInvalidExchangeImpersonationHeaderData",
    "ErrorNonExistentMailbox",
    "ErrorNoApplicableProxyCASServersAvailable",
];

/// How many times an item that the batch did not deliver is asked for alone.
const ALONE_ATTEMPTS: u32 = 2;

/// What one `GetItem` response message says about an item.
enum ItemAnswer {
    /// Its MIME.
    Mime(Bytes),
    /// `ErrorItemNotFound`.
    NotFound(String),
    /// Anything else (an error code, no MIME, MIME that is not base64): the reason.
    Failed(String),
}

impl std::fmt::Debug for EwsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EwsSource({}, {:?})", self.opts.mailbox, self.auth)
    }
}

fn protocol(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend("ews", ErrorKind::Protocol, format!("{what}: {e}"))
}

/// An item as FindItem lists it.
#[derive(Clone, Debug)]
struct ItemMeta {
    id: String,
    received: DateTime<Utc>,
    has_received: bool,
    is_read: bool,
    is_draft: bool,
    categories: Vec<String>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn item_meta(n: &Node) -> Option<ItemMeta> {
    let id = n.child("ItemId")?.attr("Id")?.to_string();
    let received = n.child_text("DateTimeReceived").and_then(parse_time);
    Some(ItemMeta {
        id,
        received: received.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        has_received: received.is_some(),
        is_read: n.child_text("IsRead") == Some("true"),
        is_draft: n.child_text("IsDraft") == Some("true"),
        categories: n
            .child("Categories")
            .map(|c| c.all("String").map(|s| s.text.trim().to_string()).collect())
            .unwrap_or_default(),
    })
}

/// Whether a folder of this class holds mail (no class, or `IPF.Note…`).
fn is_mail_class(class: Option<&str>) -> bool {
    class.is_none_or(|c| c.is_empty() || c == "IPF" || c.starts_with("IPF.Note"))
}

impl EwsSource {
    /// A source over `client` (with a token cache for [`EwsAuth::Bearer`]).
    pub fn new(client: ApiClient, auth: EwsAuth, opts: EwsOptions) -> EwsSource {
        EwsSource {
            client,
            auth,
            opts,
            folders: OnceCell::new(),
        }
    }

    /// The HTTP client (its counters show throttling and re-authentication).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// Posts `body` in an envelope; returns the parsed answer.
    async fn call(&self, what: &str, body: &str) -> Result<Node> {
        self.call_checked(what, body).await.map_err(|f| f.error)
    }

    /// [`call`](Self::call), saying on failure whether the server answered.
    async fn call_checked(&self, what: &str, body: &str) -> std::result::Result<Node, Failed> {
        let env = api::envelope(
            self.opts.impersonate.then_some(self.opts.mailbox.as_str()),
            body,
        );
        let answer = self
            .client
            .send_checked(
                what,
                |http, token| {
                    let rb = http
                        .post(&self.opts.url)
                        .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                        .body(env.clone());
                    match &self.auth {
                        EwsAuth::Basic { user, password } => {
                            rb.basic_auth(user, Some(password.expose()))
                        }
                        EwsAuth::Bearer => rb
                            .bearer_auth(token)
                            .header("X-AnchorMailbox", &self.opts.mailbox),
                    }
                },
                classify,
            )
            .await?;
        xml::parse(&answer.body).map_err(|e| Failed {
            error: protocol(what, e),
            status: Some(answer.status),
        })
    }

    fn fail(what: &str, code: &str, text: &str) -> Error {
        Error::backend("ews", code_kind(code), format!("{what}: {code}: {text}"))
    }

    /// Ids of the skipped distinguished folders that exist.
    async fn skipped_ids(&self) -> Result<HashSet<String>> {
        let doc = self
            .call("GetFolder", &api::get_folder(SKIPPED_DISTINGUISHED))
            .await?;
        let mut out = HashSet::new();
        for r in response_messages(&doc).map_err(|e| protocol("GetFolder", e))? {
            if r.class == "Error" {
                // A mailbox without a calendar (say) has nothing to skip there.
                debug!(code = r.code, "distinguished folder not found");
                continue;
            }
            if let Some(id) = r
                .node
                .child("Folders")
                .and_then(|f| f.children.first())
                .and_then(|f| f.child("FolderId"))
                .and_then(|f| f.attr("Id"))
            {
                out.insert(id.to_string());
            }
        }
        Ok(out)
    }

    async fn folder_map(&self) -> Result<&BTreeMap<FolderPath, EwsFolder>> {
        self.folders
            .get_or_try_init(|| async {
                let skipped = self.skipped_ids().await?;
                // id -> (parent id, name, is a mail folder)
                let mut all: HashMap<String, (String, String, bool)> = HashMap::new();
                let mut order = Vec::new();
                let mut offset = 0u64;
                loop {
                    let doc = self
                        .call("FindFolder", &api::find_folder(offset, self.opts.page_size))
                        .await?;
                    let msgs = response_messages(&doc).map_err(|e| protocol("FindFolder", e))?;
                    let r = msgs
                        .first()
                        .ok_or_else(|| protocol("FindFolder", "no response message"))?;
                    if r.class == "Error" {
                        return Err(Self::fail("FindFolder", r.code, r.text));
                    }
                    let root = r
                        .node
                        .child("RootFolder")
                        .ok_or_else(|| protocol("FindFolder", "no RootFolder"))?;
                    let mut n = 0u64;
                    for f in root
                        .child("Folders")
                        .map(|f| f.children.as_slice())
                        .unwrap_or(&[])
                    {
                        n += 1;
                        let (Some(id), Some(parent)) = (
                            f.child("FolderId").and_then(|i| i.attr("Id")),
                            f.child("ParentFolderId").and_then(|i| i.attr("Id")),
                        ) else {
                            continue;
                        };
                        let mail = f.name == "Folder" && is_mail_class(f.child_text("FolderClass"));
                        let name = f.child_text("DisplayName").unwrap_or("").to_string();
                        order.push(id.to_string());
                        all.insert(id.to_string(), (parent.to_string(), name, mail));
                    }
                    let last = root.attr("IncludesLastItemInRange") != Some("false");
                    if last || n == 0 {
                        break;
                    }
                    offset = root
                        .attr("IndexedPagingOffset")
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(offset + n);
                }
                let mut map: BTreeMap<FolderPath, EwsFolder> = BTreeMap::new();
                // id -> its path (None: in a skipped subtree), assigned parents first so
                // that a folder kept apart under another name keeps its subfolders.
                let mut paths: HashMap<String, Option<FolderPath>> = HashMap::new();
                for id in &order {
                    // The chain from this folder up to the root (a parent not listed).
                    let mut chain = vec![id.clone()];
                    let mut cur = id.clone();
                    while let Some((parent, _, _)) = all.get(&cur) {
                        if !all.contains_key(parent) || paths.contains_key(parent) {
                            break;
                        }
                        if chain.len() > all.len() {
                            return Err(protocol("FindFolder", "the folder parents form a loop"));
                        }
                        chain.push(parent.clone());
                        cur = parent.clone();
                    }
                    for fid in chain.into_iter().rev() {
                        if paths.contains_key(&fid) {
                            continue;
                        }
                        let Some((parent, name, mail)) = all.get(&fid) else {
                            continue;
                        };
                        let parent_path = match paths.get(parent) {
                            Some(Some(p)) => Some(p.clone()),
                            Some(None) => None,
                            None => Some(FolderPath::root()),
                        };
                        let path = match parent_path {
                            Some(pp) if !skipped.contains(&fid) && *mail => {
                                Some(insert_folder(&mut map, &pp, name, fid.clone()))
                            }
                            _ => None,
                        };
                        paths.insert(fid, path);
                    }
                }
                Ok::<_, Error>(map)
            })
            .await
    }

    /// Every item of folder `id` in the window, sorted by (DateTimeReceived, id).
    async fn list_items(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<ItemMeta>> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let body = api::find_item(id, since, before, offset, self.opts.page_size);
            let doc = self.call("FindItem", &body).await?;
            let msgs = response_messages(&doc).map_err(|e| protocol("FindItem", e))?;
            let r = msgs
                .first()
                .ok_or_else(|| protocol("FindItem", "no response message"))?;
            if r.class == "Error" {
                return Err(Self::fail("FindItem", r.code, r.text));
            }
            let root = r
                .node
                .child("RootFolder")
                .ok_or_else(|| protocol("FindItem", "no RootFolder"))?;
            let items = root
                .child("Items")
                .map(|i| i.children.as_slice())
                .unwrap_or(&[]);
            for it in items {
                match item_meta(it) {
                    Some(m) => out.push(m),
                    None => {
                        return Err(protocol(
                            "FindItem",
                            format!(
                                "an item of folder {id} is listed without an ItemId; it could not be fetched"
                            ),
                        ));
                    }
                }
            }
            if root.attr("IncludesLastItemInRange") != Some("false") || items.is_empty() {
                break;
            }
            offset = root
                .attr("IndexedPagingOffset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(offset + items.len() as u64);
        }
        out.sort_by(|a, b| (a.received, &a.id).cmp(&(b.received, &b.id)));
        // An item met on two pages (the folder changed while it was paged) once.
        let mut seen = HashSet::new();
        out.retain(|m| seen.insert(m.id.clone()));
        Ok(out)
    }

    /// What one response message says about an item; `Err` for a mailbox-wide code.
    fn item_answer(r: &api::ResponseMessage<'_>) -> Result<ItemAnswer> {
        if r.class == "Error" {
            if r.code == "ErrorItemNotFound" {
                return Ok(ItemAnswer::NotFound(format!("{}: {}", r.code, r.text)));
            }
            if MAILBOX_CODES.contains(&r.code) {
                return Err(Self::fail("GetItem", r.code, r.text));
            }
            return Ok(ItemAnswer::Failed(format!(
                "GetItem: {}: {}",
                r.code, r.text
            )));
        }
        let Some(mime) = Self::answered_item(r).and_then(|i| i.child("MimeContent")) else {
            return Ok(ItemAnswer::Failed(
                "GetItem: the item has no MimeContent".to_string(),
            ));
        };
        let b64: String = mime.text.split_whitespace().collect();
        Ok(
            match base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
                Ok(raw) => ItemAnswer::Mime(Bytes::from(raw)),
                Err(e) => ItemAnswer::Failed(format!("MimeContent is not base64: {e}")),
            },
        )
    }

    /// The item element of a response message.
    fn answered_item<'n>(r: &api::ResponseMessage<'n>) -> Option<&'n Node> {
        r.node.child("Items").and_then(|i| i.children.first())
    }

    /// The id a success response message answers for, when it says.
    fn answered_id<'n>(r: &api::ResponseMessage<'n>) -> Option<&'n str> {
        Self::answered_item(r)
            .and_then(|i| i.child("ItemId"))
            .and_then(|i| i.attr("Id"))
    }

    /// The events of one `GetItem` batch, in the batch's order, one for each item. An item
    /// the answer does not deliver (missing, answered for another id, an error response,
    /// `ErrorItemNotFound`) is asked for alone: gone then is
    /// [`SourceEvent::Expunged`]; still failing after [`ALONE_ATTEMPTS`] is
    /// [`SourceEvent::Unreadable`] with the reason. A failed request (the network, the
    /// credentials, throttling after the retries) ends the stream.
    async fn get_batch(
        &self,
        metas: Vec<ItemMeta>,
        folder: &FolderPath,
    ) -> Result<Vec<SourceEvent>> {
        let ids: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
        let mut answers: Vec<Option<ItemAnswer>> = metas.iter().map(|_| None).collect();
        match self.call_checked("GetItem", &api::get_item(&ids)).await {
            Ok(doc) => {
                let msgs = response_messages(&doc).map_err(|e| protocol("GetItem", e))?;
                if msgs.len() == metas.len() {
                    // In order, as EWS answers; a success naming another id is not used.
                    for (i, r) in msgs.iter().enumerate() {
                        if Self::answered_id(r).is_some_and(|a| a != ids[i]) {
                            continue;
                        }
                        answers[i] = Some(Self::item_answer(r)?);
                    }
                } else {
                    // Answers missing: only successes that name their id can be placed.
                    debug!(
                        answers = msgs.len(),
                        items = metas.len(),
                        "GetItem answered for fewer items"
                    );
                    for r in &msgs {
                        if let Some(i) =
                            Self::answered_id(r).and_then(|a| ids.iter().position(|x| x == a))
                            && answers[i].is_none()
                        {
                            answers[i] = Some(Self::item_answer(r)?);
                        }
                    }
                }
            }
            // One bad item can fail a whole batch: each is asked for alone.
            Err(f) if f.is_per_item() && metas.len() > 1 => {
                debug!(error = %f.error, "GetItem batch failed; asking for each item alone");
            }
            Err(f) => return Err(f.error),
        }
        let mut out = Vec::with_capacity(metas.len());
        for (meta, answer) in metas.iter().zip(answers) {
            let pos = position(meta.received, &meta.id);
            let event = match answer {
                Some(ItemAnswer::Mime(raw)) => SourceEvent::Message(SourceItem {
                    message: message_of(meta, raw, folder),
                    position: pos,
                }),
                Some(ItemAnswer::NotFound(why) | ItemAnswer::Failed(why)) => {
                    self.get_alone(meta, pos, folder, why).await?
                }
                None => {
                    self.get_alone(
                        meta,
                        pos,
                        folder,
                        "GetItem's answer has nothing for it".to_string(),
                    )
                    .await?
                }
            };
            out.push(event);
        }
        Ok(out)
    }

    /// `GetItem` of one item the batch did not deliver (`why`).
    async fn get_alone(
        &self,
        meta: &ItemMeta,
        pos: Position,
        folder: &FolderPath,
        mut why: String,
    ) -> Result<SourceEvent> {
        for _ in 0..ALONE_ATTEMPTS {
            let answer = match self
                .call_checked("GetItem", &api::get_item(std::slice::from_ref(&meta.id)))
                .await
            {
                Ok(doc) => {
                    let msgs = response_messages(&doc).map_err(|e| protocol("GetItem", e))?;
                    match msgs.as_slice() {
                        [r] if Self::answered_id(r).is_none_or(|a| a == meta.id) => {
                            Self::item_answer(r)?
                        }
                        [_] => ItemAnswer::Failed("GetItem answered for another item".to_string()),
                        _ => ItemAnswer::Failed(format!(
                            "GetItem of this item alone gave {} answers",
                            msgs.len()
                        )),
                    }
                }
                Err(f) if f.is_per_item() => ItemAnswer::Failed(f.error.to_string()),
                Err(f) => return Err(f.error),
            };
            match answer {
                ItemAnswer::Mime(raw) => {
                    return Ok(SourceEvent::Message(SourceItem {
                        message: message_of(meta, raw, folder),
                        position: pos,
                    }));
                }
                ItemAnswer::NotFound(_) => {
                    debug!(id = %meta.id, "listed item deleted meanwhile");
                    return Ok(SourceEvent::Expunged {
                        source_id: meta.id.clone(),
                        position: pos,
                    });
                }
                ItemAnswer::Failed(reason) => why = reason,
            }
        }
        Ok(SourceEvent::Unreadable {
            source_id: meta.id.clone(),
            position: pos,
            reason: format!(
                "listed, but not delivered (asked for alone {ALONE_ATTEMPTS} times): {why}"
            ),
        })
    }
}

/// Puts folder `id` named `name` under `parent` into `map`, at a path no other folder has
/// ([`unique_folder_path`](crate::cloud::unique_folder_path)); returns the path.
fn insert_folder(
    map: &mut BTreeMap<FolderPath, EwsFolder>,
    parent: &FolderPath,
    name: &str,
    id: String,
) -> FolderPath {
    let (path, notes) = crate::cloud::unique_folder_path(map, parent, name);
    map.insert(path.clone(), EwsFolder { id, notes });
    path
}

fn position(t: DateTime<Utc>, id: &str) -> Position {
    format!("{}|{id}", t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn parse_position(p: &str) -> Result<(DateTime<Utc>, String)> {
    let bad = || {
        Error::backend(
            "ews",
            ErrorKind::InvalidInput,
            format!("position `{p}` is not an EWS position"),
        )
    };
    let (t, id) = p.split_once('|').ok_or_else(bad)?;
    let t = parse_time(t).ok_or_else(bad)?;
    Ok((t, id.to_string()))
}

fn message_of(meta: &ItemMeta, raw: Bytes, folder: &FolderPath) -> Message {
    let mut m = Message::new(raw, folder.clone(), meta.id.clone());
    if meta.is_read {
        m.flags.push(Flag::Seen);
    }
    if meta.is_draft {
        m.flags.push(Flag::Draft);
    }
    m.internal_date = meta.has_received.then_some(meta.received);
    m.labels = meta.categories.clone();
    m
}

#[async_trait]
impl Source for EwsSource {
    fn kind(&self) -> &str {
        "ews"
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            filters_dates: true,
            concurrent_folders: true,
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        Ok(self
            .folder_map()
            .await?
            .iter()
            .map(|(p, f)| FolderInfo {
                notes: f.notes.clone(),
                ..FolderInfo::new(p.clone())
            })
            .collect())
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let id = self
            .folder_map()
            .await?
            .get(folder)
            .map(|f| f.id.clone())
            .ok_or_else(|| {
                Error::backend(
                    "ews",
                    ErrorKind::NotFound,
                    format!("no folder `{folder}` in {}", self.opts.mailbox),
                )
            })?;
        let after = after.map(|p| parse_position(p)).transpose()?;
        let since = match (&after, filter.since_instant()) {
            (Some((t, _)), Some(s)) => Some((*t).max(s)),
            (Some((t, _)), None) => Some(*t),
            (None, s) => s,
        };
        let mut metas = self.list_items(&id, since, filter.before_instant()).await?;
        if let Some((t, last)) = &after {
            metas.retain(|m| (m.received, &m.id) > (*t, last));
        }
        let batches: Vec<Vec<ItemMeta>> = metas
            .chunks(self.opts.batch.max(1))
            .map(<[ItemMeta]>::to_vec)
            .collect();
        let folder = folder.clone();
        let s = futures::stream::iter(batches)
            .map(move |b| {
                let folder = folder.clone();
                async move { self.get_batch(b, &folder).await }
            })
            .buffered(self.opts.concurrency.max(1))
            .flat_map(|r| {
                let v: Vec<Result<SourceEvent>> = match r {
                    Ok(events) => events.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(v)
            });
        // After an error the stream ends.
        let mut failed = false;
        let s = s.take_while(move |r| {
            let go = !failed;
            failed |= r.is_err();
            futures::future::ready(go)
        });
        Ok(Box::pin(s))
    }
}
