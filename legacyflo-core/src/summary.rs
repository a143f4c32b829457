//! Lenient extraction of the header fields that reports and content lists show.

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, MessageParser};

/// Header fields of a message, as shown in content lists. Empty when absent or unparsable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The `Date:` header, if it parses.
    pub date: Option<DateTime<Utc>>,
    /// `From:` addresses, comma separated (`Name <addr>` or `addr`).
    pub from: String,
    /// `To:` addresses, comma separated.
    pub to: String,
    /// `Cc:` addresses, comma separated.
    pub cc: String,
    /// The decoded subject.
    pub subject: String,
    /// The `Message-ID:` without angle brackets.
    pub message_id: String,
}

impl Summary {
    /// Parses the header block of `raw`; never fails and never panics.
    pub fn parse(raw: &[u8]) -> Summary {
        let Some(msg) = MessageParser::default().parse_headers(raw) else {
            return Summary::default();
        };
        let date = msg.date().and_then(|d| {
            let ts = d.to_timestamp();
            Utc.timestamp_opt(ts, 0).single()
        });
        Summary {
            date,
            from: addresses(msg.from()),
            to: addresses(msg.to()),
            cc: addresses(msg.cc()),
            subject: msg.subject().unwrap_or_default().to_string(),
            message_id: msg.message_id().unwrap_or_default().to_string(),
        }
    }
}

fn addresses(addr: Option<&Address<'_>>) -> String {
    let Some(addr) = addr else {
        return String::new();
    };
    let mut out = Vec::new();
    for a in addr.iter() {
        let email = a.address().unwrap_or_default();
        match a.name() {
            Some(name) if !name.is_empty() => out.push(format!("{name} <{email}>")),
            _ => out.push(email.to_string()),
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_headers() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nTo: a@x.test, B <b@x.test>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nDate: Tue, 1 Jan 2019 10:00:00 +0100\r\nMessage-ID: <abc@x>\r\n\r\nbody";
        let s = Summary::parse(raw);
        assert_eq!(s.from, "Jörg <j@example.com>");
        assert_eq!(s.to, "a@x.test, B <b@x.test>");
        assert_eq!(s.subject, "Grüße");
        assert_eq!(s.message_id, "abc@x");
        assert_eq!(s.date.map(|d| d.timestamp()), Some(1546333200));
    }

    #[test]
    fn garbage_gives_empty_summary() {
        let s = Summary::parse(&[0xff, 0x00, 0x13, 0x10]);
        assert_eq!(s.subject, "");
        let s = Summary::parse(b"");
        assert_eq!(s, Summary::default());
    }
}
