//! What the HTTP sources (Gmail API, Graph) share: an authenticated client that retries
//! throttled and failed requests ([`http`]) and a client-side quota limiter ([`quota`]).

pub mod http;
pub mod quota;

pub use http::{
    ApiClient, ApiStats, DEFAULT_MAX_ANSWER_BYTES, Failed, RetryPolicy, Verdict, retry_after,
};
pub use quota::QuotaLimiter;

use std::collections::BTreeMap;

use legacyflo_core::FolderPath;

/// The path for a folder named `name` under `parent` that no folder in `map` has yet: an
/// empty display name is shown as `(no name)`, and a name taken already (two sibling
/// folders with one display name) gets ` (2)`, ` (3)`, … appended. The notes say so; no
/// folder is merged into another or lost.
pub(crate) fn unique_folder_path<V>(
    map: &BTreeMap<FolderPath, V>,
    parent: &FolderPath,
    name: &str,
) -> (FolderPath, Vec<String>) {
    let mut notes = Vec::new();
    let shown = if name.is_empty() {
        notes.push("the folder has an empty display name; it is shown as `(no name)`".to_string());
        "(no name)"
    } else {
        name
    };
    let wanted = parent.child(shown.to_string());
    let mut path = wanted.clone();
    let mut n = 1;
    while map.contains_key(&path) {
        n += 1;
        path = parent.child(format!("{shown} ({n})"));
    }
    if n > 1 {
        notes.push(format!(
            "another folder has the display name `{wanted}`; this one is kept apart as `{path}`"
        ));
    }
    (path, notes)
}
