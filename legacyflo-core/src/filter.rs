//! Request filters: a date window and a folder sub-tree.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::message::{FolderPath, Message};

/// Which messages a request takes.
///
/// Dates follow the service's rule `since <= date < before`, compared on the message's
/// internal date (or its `Date:` header when the source has none), at 00:00 UTC of the
/// given days. A message with no date at all is kept: a filter never silently drops mail
/// it cannot judge. `folder` selects that folder and all of its sub-folders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Keep messages on or after this day.
    pub since: Option<NaiveDate>,
    /// Keep messages before this day.
    pub before: Option<NaiveDate>,
    /// Keep only this folder and its sub-folders.
    pub folder: Option<FolderPath>,
}

impl Filter {
    /// The `since` bound as an instant (00:00 UTC).
    pub fn since_instant(&self) -> Option<DateTime<Utc>> {
        self.since
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
    }

    /// The `before` bound as an instant (00:00 UTC).
    pub fn before_instant(&self) -> Option<DateTime<Utc>> {
        self.before
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc())
    }

    /// Whether the filter has a date bound.
    pub fn has_dates(&self) -> bool {
        self.since.is_some() || self.before.is_some()
    }

    /// Whether a message dated `date` passes the date window.
    pub fn accepts_date(&self, date: Option<DateTime<Utc>>) -> bool {
        let Some(d) = date else { return true };
        if let Some(s) = self.since_instant()
            && d < s
        {
            return false;
        }
        if let Some(b) = self.before_instant()
            && d >= b
        {
            return false;
        }
        true
    }

    /// Whether `message` passes the date window (its folder is not checked here).
    pub fn accepts(&self, message: &Message) -> bool {
        if !self.has_dates() {
            return true;
        }
        self.accepts_date(message.effective_date())
    }

    /// Whether `folder` is selected by the folder filter.
    pub fn accepts_folder(&self, folder: &FolderPath) -> bool {
        match &self.folder {
            None => true,
            Some(prefix) => folder.starts_with(prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn window_is_half_open() {
        let f = Filter {
            since: day(2020, 1, 1),
            before: day(2020, 2, 1),
            folder: None,
        };
        let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single();
        assert!(f.accepts_date(at(2020, 1, 1, 0)));
        assert!(f.accepts_date(at(2020, 1, 31, 23)));
        assert!(!f.accepts_date(at(2020, 2, 1, 0)));
        assert!(!f.accepts_date(at(2019, 12, 31, 23)));
        assert!(f.accepts_date(None));
    }

    #[test]
    fn folder_filter_takes_subfolders() {
        let f = Filter {
            folder: Some(FolderPath::parse("meetings/jun 2019", '/')),
            ..Filter::default()
        };
        assert!(f.accepts_folder(&FolderPath::parse("meetings/jun 2019", '/')));
        assert!(f.accepts_folder(&FolderPath::parse("meetings/jun 2019/a", '/')));
        assert!(!f.accepts_folder(&FolderPath::parse("meetings", '/')));
        assert!(!f.accepts_folder(&FolderPath::parse("meetings/jun 20190", '/')));
    }
}
