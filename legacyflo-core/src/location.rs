//! Where an input or output lives: a local path or an S3 object.

use std::fmt;
use std::path::PathBuf;

/// A location given by the user: a local path (`./out/x.zip`, `file:///data/x.zip`) or an
/// S3 object (`s3://bucket/key`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A path on the local file system.
    Local(PathBuf),
    /// An object (or, with a trailing `/`, a prefix) in an S3 bucket.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key (may be empty for the bucket root).
        key: String,
    },
}

impl Location {
    /// Parses a location; `None` for an empty string, an `s3://` URL without a bucket, or an
    /// unsupported scheme such as `http://`.
    pub fn parse(s: &str) -> Option<Location> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return None;
            }
            return Some(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            if path.is_empty() {
                return None;
            }
            return Some(Location::Local(PathBuf::from(path)));
        }
        if s.contains("://") {
            return None;
        }
        Some(Location::Local(PathBuf::from(s)))
    }

    /// The local path, if this is a local location.
    pub fn as_local(&self) -> Option<&PathBuf> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3 { .. } => None,
        }
    }

    /// The file name part (last path segment or key segment).
    pub fn file_name(&self) -> Option<String> {
        match self {
            Location::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            Location::S3 { key, .. } => key
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        }
    }

    /// This location with its file name replaced by `name` (a sibling file).
    pub fn with_file_name(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.with_file_name(name)),
            Location::S3 { bucket, key } => {
                let dir = key.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let key = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                Location::S3 {
                    bucket: bucket.clone(),
                    key,
                }
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("./out/x.zip"),
            Some(Location::Local(PathBuf::from("./out/x.zip")))
        );
        assert_eq!(
            Location::parse("file:///data/x.zip"),
            Some(Location::Local(PathBuf::from("/data/x.zip")))
        );
        assert_eq!(
            Location::parse("s3://b/k/x.zip"),
            Some(Location::S3 {
                bucket: "b".into(),
                key: "k/x.zip".into()
            })
        );
        assert_eq!(Location::parse("s3:///x"), None);
        assert_eq!(Location::parse("http://x/y"), None);
        assert_eq!(Location::parse(""), None);
        let l = Location::parse("s3://b/k/x.zip").map(|l| l.with_file_name("x.csv"));
        assert_eq!(l.map(|l| l.to_string()), Some("s3://b/k/x.csv".to_string()));
    }
}
