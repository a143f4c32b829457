//! Provider presets: default server, folder rules and limits.

use std::time::Duration;

pub use legacyflo_core::request::ImapPreset;

use super::client::ListEntry;

/// A provider's limits, used as defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (Gmail allows 15 per account).
    pub max_connections: usize,
    /// Bytes downloaded per rolling 24 h before the source pauses until the window ends
    /// (Gmail: 2,500 MB/day over IMAP).
    pub daily_download_bytes: Option<u64>,
    /// Bytes uploaded per rolling 24 h before the sink pauses until the window ends
    /// (Gmail: 500 MB/day over IMAP APPEND).
    pub daily_upload_bytes: Option<u64>,
    /// The window of the two caps above: 24 h (shorter only in tests).
    pub cap_window: Duration,
    /// UIDs per `UID FETCH` command.
    pub fetch_batch: usize,
    /// `UID FETCH` commands in flight at once.
    pub pipeline_depth: usize,
    /// Messages per `APPEND` round (one MULTIAPPEND, or pipelined APPENDs).
    pub append_batch: usize,
    /// Per-response timeout.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4,
            daily_download_bytes: None,
            daily_upload_bytes: None,
            cap_window: Duration::from_secs(86_400),
            fetch_batch: 250,
            pipeline_depth: 3,
            append_batch: 64,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A byte cap per window, as a throttle: once `cap` bytes went through in the current
/// window, the caller pauses until the window ends and a new one begins.
#[derive(Debug)]
pub struct Budget {
    cap: Option<u64>,
    window: Duration,
    used: std::sync::Mutex<(std::time::Instant, u64)>,
}

impl Budget {
    /// `cap` bytes per `window`; `None` never pauses.
    pub fn new(cap: Option<u64>, window: Duration) -> Budget {
        Budget {
            cap,
            window,
            used: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    /// Counts `bytes`; returns how long to pause when the cap is reached.
    pub fn take(&self, bytes: u64) -> Option<Duration> {
        let cap = self.cap?;
        let mut b = self.used.lock().ok()?;
        if b.0.elapsed() >= self.window {
            *b = (std::time::Instant::now(), 0);
        }
        b.1 = b.1.saturating_add(bytes);
        if b.1 >= cap {
            let wait = self.window.saturating_sub(b.0.elapsed());
            *b = (std::time::Instant::now() + wait, 0);
            Some(wait)
        } else {
            None
        }
    }
}

/// The limits of `preset`.
pub fn limits(preset: ImapPreset) -> Limits {
    let d = Limits::default();
    match preset {
        ImapPreset::Gmail => Limits {
            max_connections: 15,
            daily_download_bytes: Some(2_500 * 1_000_000),
            daily_upload_bytes: Some(500 * 1_000_000),
            fetch_batch: 100,
            ..d
        },
        // Exchange Online throttles hard; few connections, small batches.
        ImapPreset::O365 | ImapPreset::Exchange => Limits {
            max_connections: 4,
            fetch_batch: 50,
            pipeline_depth: 2,
            append_batch: 16,
            ..d
        },
        ImapPreset::Yahoo => Limits {
            max_connections: 5,
            fetch_batch: 100,
            ..d
        },
        _ => d,
    }
}

/// Names O365 shows over IMAP that hold no mail (or only hidden items).
const O365_SKIP: &[&str] = &[
    "Contacts",
    "Deleted Items",
    "Tasks",
    "Calendar",
    "Files",
    "Journal",
    "Notes",
];

/// Whether `preset` migrates the folder `entry` (decoded name segments `path`).
///
/// - GMAIL: only All Mail (`\All` special use, or `[Gmail]/All Mail` by name): every label
///   is a view of it, so taking the others would copy messages many times; labels travel
///   as metadata (`X-GM-LABELS`).
/// - O365 / EXCHANGE: not Contacts, Deleted Items, Tasks, Calendar, Journal, Notes, the
///   hidden `Files`, nor their sub-folders.
/// - Others: everything.
pub fn keeps(preset: ImapPreset, entry: &ListEntry, path: &[String]) -> bool {
    match preset {
        ImapPreset::Gmail => {
            entry
                .special_use
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("\\All"))
                || path.iter().map(String::as_str).eq(["[Gmail]", "All Mail"])
                || path
                    .iter()
                    .map(String::as_str)
                    .eq(["[Google Mail]", "All Mail"])
        }
        ImapPreset::O365 | ImapPreset::Exchange => !path
            .first()
            .is_some_and(|f| O365_SKIP.iter().any(|s| s.eq_ignore_ascii_case(f))),
        _ => true,
    }
}

/// Whether the preset keeps Gmail labels (fetches `X-GM-LABELS X-GM-MSGID`).
pub fn gmail_extensions(preset: ImapPreset) -> bool {
    preset == ImapPreset::Gmail
}

/// MITHI keeps every folder under `INBOX.` (separator `.`): `INBOX.Sent.2020` is shown as
/// `Sent/2020`, INBOX itself stays `INBOX`.
pub fn strips_inbox_prefix(preset: ImapPreset) -> bool {
    preset == ImapPreset::Mithi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, special: Option<&str>) -> ListEntry {
        ListEntry {
            raw_name: name.into(),
            name: name.into(),
            delimiter: Some('/'),
            noselect: false,
            special_use: special.map(str::to_string),
            attributes: vec![],
            status: None,
        }
    }

    #[test]
    fn folder_rules() {
        let p = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert!(keeps(
            ImapPreset::Gmail,
            &entry("[Gmail]/All Mail", None),
            &p("[Gmail]/All Mail")
        ));
        assert!(keeps(
            ImapPreset::Gmail,
            &entry("[Gmail]/Alle", Some("\\All")),
            &p("[Gmail]/Alle")
        ));
        assert!(!keeps(
            ImapPreset::Gmail,
            &entry("INBOX", None),
            &p("INBOX")
        ));
        assert!(!keeps(
            ImapPreset::O365,
            &entry("Calendar/Birthdays", None),
            &p("Calendar/Birthdays")
        ));
        assert!(!keeps(
            ImapPreset::O365,
            &entry("Deleted Items", None),
            &p("Deleted Items")
        ));
        assert!(keeps(
            ImapPreset::O365,
            &entry("Sent Items", None),
            &p("Sent Items")
        ));
        assert_eq!(limits(ImapPreset::Gmail).max_connections, 15);
    }
}
