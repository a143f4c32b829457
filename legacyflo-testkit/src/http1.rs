//! The request head of an HTTP/1.1 message, as the testkit's small S3 servers read it.

use std::io::{self, BufRead};

/// A request line and its headers (names lower-cased).
pub(crate) struct Head {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// `(name, value)`, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
}

/// Reads the next request head from `rd`; `None` when the peer closed the connection.
pub(crate) fn read_head(rd: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if rd.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if rd.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(Some(Head {
        method,
        target,
        headers,
    }))
}
