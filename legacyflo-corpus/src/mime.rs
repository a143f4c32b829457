//! A minimal MIME message builder (CRLF output).

use crate::encode::{Charset, base64_lines, encoded_words, quoted_printable, rfc2231_value};

/// Content-Transfer-Encoding of a text part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cte {
    /// 7bit (the bytes must be ASCII).
    SevenBit,
    /// 8bit.
    EightBit,
    /// quoted-printable.
    Qp,
    /// base64.
    Base64,
}

impl Cte {
    fn label(self) -> &'static str {
        match self {
            Cte::SevenBit => "7bit",
            Cte::EightBit => "8bit",
            Cte::Qp => "quoted-printable",
            Cte::Base64 => "base64",
        }
    }
}

/// A header field: name and raw value bytes (may contain folding CRLF SP).
pub type Header = (String, Vec<u8>);

/// A MIME entity.
#[derive(Clone, Debug)]
pub struct Part {
    /// Header fields of this entity (Content-*).
    pub headers: Vec<Header>,
    /// Its body.
    pub body: Body,
}

/// Body of a MIME entity.
#[derive(Clone, Debug)]
pub enum Body {
    /// Already transfer-encoded bytes, CRLF line endings, ending in CRLF.
    Leaf(Vec<u8>),
    /// A multipart body.
    Multi {
        /// Boundary string.
        boundary: String,
        /// Child entities.
        parts: Vec<Part>,
        /// Whether the closing delimiter is written (false = malformed).
        closed: bool,
    },
}

/// Builds a header.
pub fn h(name: &str, value: impl AsRef<[u8]>) -> Header {
    (name.to_owned(), value.as_ref().to_vec())
}

/// Converts `\n` line breaks to CRLF (input must not contain CR).
pub fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

impl Part {
    /// A text part (`subtype` = plain/html/csv…) of `text` (with `\n` breaks) in `cs`,
    /// transfer-encoded with `cte`.
    pub fn text(subtype: &str, text: &str, cs: Charset, cte: Cte) -> Part {
        let bytes = cs.encode(&crlf(text));
        let body = match cte {
            Cte::SevenBit | Cte::EightBit => bytes,
            Cte::Qp => quoted_printable(&bytes),
            Cte::Base64 => base64_lines(&bytes),
        };
        let ct = if subtype == "plain" && cs == Charset::Utf8 && cte == Cte::EightBit {
            format!("text/plain; charset={}; format=flowed", cs.label())
        } else {
            format!("text/{subtype}; charset={}", cs.label())
        };
        Part {
            headers: vec![
                h("Content-Type", ct),
                h("Content-Transfer-Encoding", cte.label()),
            ],
            body: Body::Leaf(body),
        }
    }

    /// A base64 attachment. Non-ASCII file names are written both as an RFC 2231
    /// `filename*` and, when `legacy_name` is set, as an RFC 2047 `name=` (Outlook style).
    pub fn attachment(content_type: &str, filename: &str, data: &[u8], legacy_name: bool) -> Part {
        let (ct, cd) = if filename.is_ascii() {
            (
                format!("{content_type}; name=\"{filename}\""),
                format!("attachment; filename=\"{filename}\""),
            )
        } else if legacy_name {
            let enc = encoded_words(filename, Charset::Utf8, false).replace("\r\n ", "");
            (
                format!("{content_type};\r\n name=\"{enc}\""),
                format!("attachment;\r\n filename=\"{enc}\""),
            )
        } else {
            (
                content_type.to_owned(),
                format!("attachment;\r\n filename*={}", rfc2231_value(filename)),
            )
        };
        Part {
            headers: vec![
                h("Content-Type", ct),
                h("Content-Disposition", cd),
                h("Content-Transfer-Encoding", "base64"),
            ],
            body: Body::Leaf(base64_lines(data)),
        }
    }

    /// A multipart entity.
    pub fn multi(subtype: &str, boundary: &str, parts: Vec<Part>) -> Part {
        Part {
            headers: vec![h(
                "Content-Type",
                format!("multipart/{subtype};\r\n boundary=\"{boundary}\""),
            )],
            body: Body::Multi {
                boundary: boundary.to_owned(),
                parts,
                closed: true,
            },
        }
    }

    /// Appends the entity (headers, blank line, body) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_headers(&self.headers, out);
        out.extend_from_slice(b"\r\n");
        self.write_body(out);
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match &self.body {
            Body::Leaf(bytes) => out.extend_from_slice(bytes),
            Body::Multi {
                boundary,
                parts,
                closed,
            } => {
                out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
                for p in parts {
                    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
                    p.write(out);
                    if out.ends_with(b"\r\n") {
                        out.truncate(out.len() - 2);
                    }
                }
                if *closed {
                    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                } else {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

/// Appends header fields, each ending in CRLF.
pub fn write_headers(headers: &[Header], out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// A whole message: `headers` (From, To, …) followed by the root entity's headers and body.
pub fn message(headers: &[Header], root: &Part) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    write_headers(headers, &mut out);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    root.write(&mut out);
    out
}

/// Formats a mailbox `Name <addr>`, RFC 2047-encoding non-ASCII names in `cs`
/// (Q for Latin scripts, B otherwise) and quoting names with specials.
pub fn mailbox(name: &str, addr: &str, cs: Charset) -> String {
    if name.is_empty() {
        return format!("<{addr}>");
    }
    if name.is_ascii() {
        if name.chars().any(|c| "()<>[]:;@\\,.\"'".contains(c)) {
            return format!("\"{}\" <{addr}>", name.replace('"', "\\\""));
        }
        return format!("{name} <{addr}>");
    }
    let q = matches!(cs, Charset::Latin1 | Charset::Cp1252);
    format!("{} <{addr}>", encoded_words(name, cs, q))
}
