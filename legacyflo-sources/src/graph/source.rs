//! The Graph source: folders by `mailFolders` + `childFolders`, messages by
//! `mailFolders/{id}/messages` filtered on `receivedDateTime`, MIME by `$value`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use legacyflo_core::source::{FolderInfo, MessageStream, Position, SourceCapabilities};
use legacyflo_core::{
    Error, ErrorKind, Filter, Flag, FolderPath, Message, Result, Source, SourceEvent, SourceItem,
};
use tokio::sync::{OnceCell, Semaphore};
use tracing::debug;

use super::api::{DeltaPage, FolderPage, MailFolder, MessageMeta, classify};
use crate::cloud::{ApiClient, Failed, QuotaLimiter};

/// How many times `$value` is asked for a message that answers 404 but exists.
const VALUE_ATTEMPTS: u32 = 3;

/// Top-level folders the service does not migrate (they hold no mail, or deleted mail).
pub const SKIPPED_FOLDERS: &[&str] = &["Contacts", "Deleted Items", "Tasks", "Calendar"];

/// Settings of a [`GraphSource`].
#[derive(Clone, Debug)]
pub struct GraphOptions {
    /// Base URL including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub api_url: String,
    /// The mailbox (UPN or id).
    pub mailbox: String,
    /// Requests in flight at once for this mailbox (Graph allows 4).
    pub concurrency: usize,
    /// `$top` of message list pages (Graph allows up to 1000).
    pub page_size: u32,
    /// Requests per window for this mailbox (Graph: 10,000 per 10 minutes).
    pub requests_per_window: u64,
    /// The request window.
    pub window: std::time::Duration,
}

impl GraphOptions {
    /// Options for `mailbox` at Graph v1.0 (or `api_url`), 4 in flight, pages of 100.
    pub fn new(mailbox: impl Into<String>, api_url: Option<&str>) -> GraphOptions {
        GraphOptions {
            api_url: api_url
                .unwrap_or(super::GRAPH_URL)
                .trim_end_matches('/')
                .to_string(),
            mailbox: mailbox.into(),
            concurrency: 4,
            page_size: 100,
            requests_per_window: 10_000,
            window: std::time::Duration::from_secs(600),
        }
    }
}

/// A Microsoft 365 mailbox read through Graph.
///
/// A folder is listed by a delta query (`mailFolders/{id}/messages/delta`) and streams in
/// `(receivedDateTime, id)` order. Positions are `receivedDateTime|id` of the message
/// yielded; the last message of a folder's listing also carries the round's
/// `@odata.deltaLink` (`receivedDateTime|id|delta=LINK`). A stream started after a
/// position with a delta link asks Graph only for the changes since (one round instead of
/// a full listing) and yields the messages after the position; when Graph no longer knows
/// the token (410), the folder is listed again and the same rule applies. Either way a
/// resume or a later incremental run yields exactly the messages after the position.
pub struct GraphSource {
    client: ApiClient,
    opts: GraphOptions,
    inflight: Arc<Semaphore>,
    limiter: QuotaLimiter,
    folders: OnceCell<BTreeMap<FolderPath, GraphFolder>>,
}

/// A listed folder: its id, and what the listing noticed.
#[derive(Debug, Clone)]
struct GraphFolder {
    id: String,
    notes: Vec<String>,
}

/// Puts folder `id` named `name` under `parent` into `map`, at a path no other folder has
/// ([`unique_folder_path`](crate::cloud::unique_folder_path)); returns the path.
fn insert_folder(
    map: &mut BTreeMap<FolderPath, GraphFolder>,
    parent: &FolderPath,
    name: &str,
    id: String,
) -> FolderPath {
    let (path, notes) = crate::cloud::unique_folder_path(map, parent, name);
    map.insert(path.clone(), GraphFolder { id, notes });
    path
}

impl std::fmt::Debug for GraphSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GraphSource({})", self.opts.mailbox)
    }
}

fn enc(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn protocol(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend("graph", ErrorKind::Protocol, format!("{what}: {e}"))
}

impl GraphSource {
    /// A source over `client` (which holds the token cache) with `opts`.
    pub fn new(client: ApiClient, opts: GraphOptions) -> GraphSource {
        GraphSource {
            inflight: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            limiter: QuotaLimiter::new(opts.requests_per_window, opts.window),
            client,
            opts,
            folders: OnceCell::new(),
        }
    }

    /// The HTTP client (its counters show throttling and re-authentication).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    fn user_url(&self) -> String {
        format!("{}/users/{}", self.opts.api_url, enc(&self.opts.mailbox))
    }

    async fn get(&self, what: &str, url: &str) -> Result<Bytes> {
        let _permit = self
            .inflight
            .acquire()
            .await
            .map_err(|_| Error::Cancelled)?;
        self.limiter.acquire(1).await;
        let answer = self
            .client
            .send(
                what,
                |http, token| http.get(url).bearer_auth(token),
                classify,
            )
            .await?;
        Ok(answer.body)
    }

    async fn folder_pages(&self, first: String) -> Result<Vec<MailFolder>> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next {
            let body = self.get("list mail folders", &url).await?;
            let page: FolderPage =
                serde_json::from_slice(&body).map_err(|e| protocol("mailFolders page", e))?;
            out.extend(page.value);
            next = page.next_link;
        }
        Ok(out)
    }

    async fn folder_map(&self) -> Result<&BTreeMap<FolderPath, GraphFolder>> {
        self.folders
            .get_or_try_init(|| async {
                let mut map = BTreeMap::new();
                let mut todo: Vec<(FolderPath, String)> = Vec::new();
                let top = self
                    .folder_pages(format!(
                        "{}/mailFolders?$top=100&includeHiddenFolders=false",
                        self.user_url()
                    ))
                    .await?;
                for f in top {
                    if SKIPPED_FOLDERS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&f.display_name))
                    {
                        debug!(folder = %f.display_name, "skipped");
                        continue;
                    }
                    let path =
                        insert_folder(&mut map, &FolderPath::root(), &f.display_name, f.id.clone());
                    if f.child_folder_count > 0 {
                        todo.push((path, f.id));
                    }
                }
                while let Some((parent, id)) = todo.pop() {
                    let children = self
                        .folder_pages(format!(
                            "{}/mailFolders/{}/childFolders?$top=100",
                            self.user_url(),
                            enc(&id)
                        ))
                        .await?;
                    for c in children {
                        let path = insert_folder(&mut map, &parent, &c.display_name, c.id.clone());
                        if c.child_folder_count > 0 {
                            todo.push((path, c.id));
                        }
                    }
                }
                Ok::<_, Error>(map)
            })
            .await
    }

    /// One delta round from `first` (a folder's delta URL or a delta link): the messages
    /// in it that are in the window, sorted by (receivedDateTime, id), and the next round's
    /// delta link.
    async fn delta_round(
        &self,
        first: String,
        since: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<(Vec<(DateTime<Utc>, MessageMeta)>, Option<String>)> {
        let mut next = Some(first);
        // By id: a message met twice in a round (changed while it was listed) is taken
        // as last seen; one marked `@removed` after it was met has left the folder.
        let mut seen: HashMap<String, (DateTime<Utc>, MessageMeta)> = HashMap::new();
        let mut delta = None;
        while let Some(url) = next {
            let body = self.get("list messages (delta)", &url).await?;
            let page: DeltaPage =
                serde_json::from_slice(&body).map_err(|e| protocol("delta page", e))?;
            for m in page.value {
                if m.removed.is_some() {
                    seen.remove(&m.id);
                    continue;
                }
                let t = parse_time(m.received_date_time.as_deref())
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                if since.is_some_and(|s| t < s) || before.is_some_and(|b| t >= b) {
                    seen.remove(&m.id);
                    continue;
                }
                seen.insert(m.id.clone(), (t, m));
            }
            next = page.next_link;
            delta = page.delta_link.or(delta);
        }
        let mut out: Vec<(DateTime<Utc>, MessageMeta)> = seen.into_values().collect();
        out.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok((out, delta))
    }

    /// `GET url` through the in-flight and rate limits, saying on failure whether Graph
    /// answered.
    async fn get_checked(&self, what: &str, url: &str) -> std::result::Result<Bytes, Failed> {
        let _permit = self.inflight.acquire().await.map_err(|_| Failed {
            error: Error::Cancelled,
            status: None,
        })?;
        self.limiter.acquire(1).await;
        self.client
            .send_checked(
                what,
                |http, token| http.get(url).bearer_auth(token),
                classify,
            )
            .await
            .map(|a| a.body)
    }

    /// The event of one listed message: its MIME, or (when `$value` answers 404) a check
    /// whether it still exists: gone is [`SourceEvent::Expunged`]; still there, `$value`
    /// is asked again (up to [`VALUE_ATTEMPTS`] times). A failure of the message's own
    /// (Graph answered, after the client's retries) is [`SourceEvent::Unreadable`] with
    /// the reason; a failure of the network, the quota or the credentials ends the stream.
    async fn download(
        &self,
        meta: &MessageMeta,
        t: DateTime<Utc>,
        url: &str,
        folder: &FolderPath,
        pos: Position,
    ) -> Result<SourceEvent> {
        let unreadable = |reason: String| SourceEvent::Unreadable {
            source_id: meta.id.clone(),
            position: pos.clone(),
            reason,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let failed = match self.get_checked("get message $value", url).await {
                Ok(raw) => {
                    return Ok(SourceEvent::Message(SourceItem {
                        message: message_of(meta, t, raw, folder),
                        position: pos,
                    }));
                }
                Err(f) => f,
            };
            if failed.error.kind() != ErrorKind::NotFound {
                if failed.is_per_item() {
                    return Ok(unreadable(failed.error.to_string()));
                }
                return Err(failed.error);
            }
            let check = format!("{}/messages/{}?$select=id", self.user_url(), enc(&meta.id));
            match self.get_checked("get message", &check).await {
                Ok(_) if attempt < VALUE_ATTEMPTS => {
                    debug!(id = %meta.id, "$value answered 404 for a message that exists; asking again");
                }
                Ok(_) => {
                    return Ok(unreadable(format!(
                        "the message exists, but its MIME ($value) answered 404 {attempt} times: {}",
                        failed.error
                    )));
                }
                Err(f) if f.error.kind() == ErrorKind::NotFound => {
                    debug!(id = %meta.id, "listed message deleted meanwhile");
                    return Ok(SourceEvent::Expunged {
                        source_id: meta.id.clone(),
                        position: pos,
                    });
                }
                Err(f) if f.is_per_item() => return Ok(unreadable(f.error.to_string())),
                Err(f) => return Err(f.error),
            }
        }
    }

    /// The first delta round of folder `id` (every message on or after `since`).
    fn delta_url(&self, id: &str, since: Option<DateTime<Utc>>) -> String {
        let mut url = format!(
            "{}/mailFolders/{}/messages/delta?$select=id,receivedDateTime,isRead,isDraft,flag,categories",
            self.user_url(),
            enc(id),
        );
        if let Some(s) = since {
            url.push_str(&format!(
                "&$filter={}",
                enc(&format!("receivedDateTime ge {}", iso(s)))
            ));
        }
        url
    }
}

fn position(t: DateTime<Utc>, id: &str, delta: Option<&str>) -> Position {
    let t = t.to_rfc3339_opts(SecondsFormat::Millis, true);
    match delta {
        Some(link) => format!("{t}|{id}|delta={link}"),
        None => format!("{t}|{id}"),
    }
}

/// `(receivedDateTime, id, delta link)` of a position.
fn parse_position(p: &str) -> Result<(DateTime<Utc>, String, Option<String>)> {
    let bad = || {
        Error::backend(
            "graph",
            ErrorKind::InvalidInput,
            format!("position `{p}` is not a Graph position"),
        )
    };
    let (t, rest) = p.split_once('|').ok_or_else(bad)?;
    let t = parse_time(Some(t)).ok_or_else(bad)?;
    let (id, delta) = match rest.split_once("|delta=") {
        Some((id, link)) if !link.is_empty() => (id, Some(link.to_string())),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    Ok((t, id.to_string(), delta))
}

fn message_of(meta: &MessageMeta, t: DateTime<Utc>, raw: Bytes, folder: &FolderPath) -> Message {
    let mut m = Message::new(raw, folder.clone(), meta.id.clone());
    if meta.is_read {
        m.flags.push(Flag::Seen);
    }
    if meta
        .flag
        .as_ref()
        .and_then(|f| f.flag_status.as_deref())
        .is_some_and(|s| s.eq_ignore_ascii_case("flagged"))
    {
        m.flags.push(Flag::Flagged);
    }
    if meta.is_draft {
        m.flags.push(Flag::Draft);
    }
    m.internal_date = meta.received_date_time.as_ref().map(|_| t);
    m.labels = meta.categories.clone();
    m
}

#[async_trait]
impl Source for GraphSource {
    fn kind(&self) -> &str {
        "graph"
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
                    "graph",
                    ErrorKind::NotFound,
                    format!("no folder `{folder}` in {}", self.opts.mailbox),
                )
            })?;
        let after = after.map(|p| parse_position(p)).transpose()?;
        let since = match (&after, filter.since_instant()) {
            (Some((t, _, _)), Some(s)) => Some((*t).max(s)),
            (Some((t, _, _)), None) => Some(*t),
            (None, s) => s,
        };
        let before = filter.before_instant();
        let changes = match after.as_ref().and_then(|a| a.2.clone()) {
            Some(link) => match self.delta_round(link, since, before).await {
                Ok(r) => Some(r),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(%folder, "delta token expired: listing the folder again");
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (mut metas, delta) = match changes {
            Some(r) => r,
            None => {
                self.delta_round(self.delta_url(&id, since), since, before)
                    .await?
            }
        };
        if let Some((t, last, _)) = &after {
            metas.retain(|(mt, m)| (*mt, &m.id) > (*t, last));
        }
        let last = metas.last().map(|(_, m)| m.id.clone());
        let folder = folder.clone();
        let mailbox = self.opts.mailbox.clone();
        let s = futures::stream::iter(metas)
            .map(move |(t, meta)| {
                let folder = folder.clone();
                let url = format!(
                    "{}/users/{}/messages/{}/$value",
                    self.opts.api_url,
                    enc(&mailbox),
                    enc(&meta.id)
                );
                let link = delta
                    .clone()
                    .filter(|_| last.as_deref() == Some(meta.id.as_str()));
                async move {
                    let pos = position(t, &meta.id, link.as_deref());
                    self.download(&meta, t, &url, &folder, pos).await
                }
            })
            .buffered(self.opts.concurrency.max(1));
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
