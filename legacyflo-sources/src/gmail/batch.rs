//! Gmail HTTP batch requests: `multipart/mixed` bodies of `application/http` parts, as
//! <https://developers.google.com/gmail/api/guides/batch> documents them.

use bytes::Bytes;
use reqwest::StatusCode;

/// Most inner requests Gmail accepts in one batch.
pub const MAX_BATCH: usize = 50;

/// One inner answer.
#[derive(Debug)]
pub struct Part {
    /// The index of the inner request it answers (from its `Content-ID`).
    pub index: usize,
    /// Its status.
    pub status: StatusCode,
    /// Its `Retry-After` header, raw.
    pub retry_after: Option<String>,
    /// Its body.
    pub body: Bytes,
}

/// The body of a batch of `GET` requests to `paths` (absolute paths with query), with
/// `boundary`.
pub fn request_body(boundary: &str, paths: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in paths.iter().enumerate() {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{}>\r\n\r\nGET {p}\r\n\r\n",
            i + 1
        ));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

/// The `boundary` parameter of a `multipart/mixed` content type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits headers from body at the first blank line (CRLF or LF).
fn split_head(b: &[u8]) -> (&[u8], &[u8]) {
    if let Some(p) = find(b, b"\r\n\r\n", 0) {
        (&b[..p], &b[p + 4..])
    } else if let Some(p) = find(b, b"\n\n", 0) {
        (&b[..p], &b[p + 2..])
    } else {
        (b, &[])
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Parses a batch answer into its parts. `Content-ID: <response-itemN>` names the inner
/// request N (1-based); a part without one is matched by its position.
pub fn parse_response(boundary: &str, body: &Bytes) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, d, 0).ok_or("no multipart boundary in the batch answer")?;
    let mut seq = 0usize;
    loop {
        let start = pos + d.len();
        if body[start..].starts_with(b"--") {
            break;
        }
        let Some(next) = find(body, d, start) else {
            return Err("batch answer ends without its closing boundary".into());
        };
        // The part lies between the CRLF after the delimiter and the CRLF before the next.
        let mut chunk = &body[start..next];
        chunk = chunk
            .strip_prefix(b"\r\n")
            .or_else(|| chunk.strip_prefix(b"\n"))
            .unwrap_or(chunk);
        chunk = chunk
            .strip_suffix(b"\r\n")
            .or_else(|| chunk.strip_suffix(b"\n"))
            .unwrap_or(chunk);
        let (outer_head, inner) = split_head(chunk);
        let outer_head = String::from_utf8_lossy(outer_head);
        let index = header(&outer_head, "Content-ID")
            .and_then(|v| {
                let v = v.trim_matches(|c| c == '<' || c == '>');
                let n = v.rsplit("item").next()?;
                n.parse::<usize>().ok()
            })
            .map(|n| n.saturating_sub(1))
            .unwrap_or(seq);
        seq += 1;
        let (inner_head, inner_body) = split_head(inner);
        let inner_head = String::from_utf8_lossy(inner_head);
        let status = inner_head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| format!("batch part {} has no HTTP status line", index + 1))?;
        let offset = inner_body.as_ptr() as usize - body.as_ptr() as usize;
        parts.push(Part {
            index,
            status,
            retry_after: header(&inner_head, "Retry-After").map(str::to_string),
            body: body.slice(offset..offset + inner_body.len()),
        });
        pos = next;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_the_documented_shape() {
        let req = request_body(
            "batch_x",
            &["/gmail/v1/users/me/messages/a?format=raw".into()],
        );
        assert!(req.starts_with("--batch_x\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\nGET /gmail/v1/users/me/messages/a?format=raw\r\n"));
        assert!(req.ends_with("--batch_x--\r\n"));
        let answer = Bytes::from_static(
            b"--batch_pK7JBAk73-E=_AA5eFwv4m2Q=\r\nContent-Type: application/http\r\nContent-ID: <response-item2>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"id\":\"b\"}\r\n--batch_pK7JBAk73-E=_AA5eFwv4m2Q=\r\nContent-Type: application/http\r\nContent-ID: <response-item1>\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n\r\n{}\r\n--batch_pK7JBAk73-E=_AA5eFwv4m2Q=--\r\n",
        );
        assert_eq!(
            boundary_of("multipart/mixed; boundary=batch_pK7JBAk73-E=_AA5eFwv4m2Q=").as_deref(),
            Some("batch_pK7JBAk73-E=_AA5eFwv4m2Q=")
        );
        let parts = parse_response("batch_pK7JBAk73-E=_AA5eFwv4m2Q=", &answer).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].index, parts[0].status.as_u16()), (1, 200));
        assert_eq!(&parts[0].body[..], b"{\"id\":\"b\"}");
        assert_eq!((parts[1].index, parts[1].status.as_u16()), (0, 429));
        assert_eq!(parts[1].retry_after.as_deref(), Some("2"));
        assert!(parse_response("nope", &answer).is_err());
    }
}
