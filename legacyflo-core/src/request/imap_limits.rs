//! The bounds of an IMAP exchange as request fields: `source_command_timeout`,
//! `source_max_message_size`, `source_max_line_length` and their `dest_` twins.

use std::time::Duration;

use super::{Field, Params, RequestErrors};

/// Bounds of an IMAP connection that a request may set; `None` keeps the client's
/// default. Applied by the IMAP source and sink (`legacyflo_sources::imap::ConnectOptions`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImapLimits {
    /// Deadline of one command, from sending it to its completion (default 15 minutes).
    /// Field `*_command_timeout`: seconds, or a number with `s`, `m` or `h`; 1 s to 24 h.
    pub command_timeout: Option<Duration>,
    /// The largest message read (default 2 GiB); a larger one is skipped and reported.
    /// Field `*_max_message_size`: bytes, or a number with `K`, `M` or `G` (powers of
    /// 1024); 1 KiB to 4 GiB.
    pub max_message_size: Option<u64>,
    /// The longest response line accepted (default 1 MiB). Field `*_max_line_length`:
    /// bytes, or with `K` / `M`; 1 KiB to 64 MiB.
    pub max_line_length: Option<usize>,
}

/// The three limit fields of one side.
pub(super) struct LimitFields {
    pub command_timeout: Field,
    pub max_message_size: Field,
    pub max_line_length: Field,
}

/// The source's limit fields.
pub(super) const SOURCE: LimitFields = LimitFields {
    command_timeout: Field::SourceCommandTimeout,
    max_message_size: Field::SourceMaxMessageSize,
    max_line_length: Field::SourceMaxLineLength,
};

/// The destination's limit fields.
pub(super) const DEST: LimitFields = LimitFields {
    command_timeout: Field::DestCommandTimeout,
    max_message_size: Field::DestMaxMessageSize,
    max_line_length: Field::DestMaxLineLength,
};

/// `12m` → `(12, "M")`: the number and its unit, upper-cased.
fn number_and_unit(v: &str) -> Option<(u64, String)> {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    Some((num.parse().ok()?, unit.trim().to_ascii_uppercase()))
}

/// Parses `12`, `12s`, `5m`, `1h` (seconds by default).
fn duration(v: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(v)?;
    let secs = match unit.to_ascii_lowercase().as_str() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Parses `1048576`, `512K`, `64M`, `2G` (powers of 1024; a trailing `B`/`iB` is allowed).
fn bytes(v: &str) -> Option<u64> {
    let (n, unit) = number_and_unit(v)?;
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Reads and checks the limit fields of one side.
pub(super) fn parse_limits(
    params: &Params,
    fields: &LimitFields,
    errs: &mut RequestErrors,
) -> ImapLimits {
    let mut out = ImapLimits::default();
    if let Some(v) = params.get(fields.command_timeout) {
        match duration(v) {
            Some(d) if (1..=86_400).contains(&d.as_secs()) => out.command_timeout = Some(d),
            _ => errs.push(
                fields.command_timeout,
                format!("`{v}` is not a duration from 1 s to 24 h (seconds, or with s, m or h)"),
            ),
        }
    }
    if let Some(v) = params.get(fields.max_message_size) {
        match bytes(v) {
            Some(n) if ((1 << 10)..=(4 << 30)).contains(&n) => out.max_message_size = Some(n),
            _ => errs.push(
                fields.max_message_size,
                format!("`{v}` is not a size from 1K to 4G (bytes, or with K, M or G)"),
            ),
        }
    }
    if let Some(v) = params.get(fields.max_line_length) {
        match bytes(v).and_then(|n| usize::try_from(n).ok()) {
            Some(n) if ((1 << 10)..=(64 << 20)).contains(&n) => out.max_line_length = Some(n),
            _ => errs.push(
                fields.max_line_length,
                format!("`{v}` is not a size from 1K to 64M (bytes, or with K or M)"),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(duration("x"), None);
        assert_eq!(duration("5 days"), None);
        assert_eq!(bytes("2G"), Some(2 << 30));
        assert_eq!(bytes("512KiB"), Some(512 << 10));
        assert_eq!(bytes("64MB"), Some(64 << 20));
        assert_eq!(bytes("1T"), None);
        assert_eq!(bytes("99999999999999999999G"), None);
    }
}
