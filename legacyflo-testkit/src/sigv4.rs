//! AWS Signature Version 4 for the testkit's plain HTTP requests to the S3 test server
//! ([`S3Server::http`](crate::servers::S3Server::http)), which checks signatures.
//!
//! Follows the AWS documentation "Create a signed AWS API request" (S3 flavour: the path
//! is URI-encoded once, `x-amz-content-sha256` carries the hex SHA-256 of the payload and
//! is signed). Only what the tests need: header-based signing of a whole payload.

use sha2::{Digest, Sha256};

/// What one request needs to be signed.
#[derive(Clone, Debug)]
pub struct Signing<'a> {
    /// Access key id.
    pub access_key: &'a str,
    /// Secret access key.
    pub secret_key: &'a str,
    /// Region (`us-east-1`).
    pub region: &'a str,
    /// `YYYYMMDDTHHMMSSZ` (UTC); S3 refuses a time more than 15 minutes off.
    pub amz_date: &'a str,
}

/// Percent-encodes as SigV4 wants: unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay,
/// `/` stays when `keep_slash`, everything else is `%XX` (upper-case hex) per UTF-8 byte.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string of a raw (not yet encoded) query such as `uploads` or
/// `partNumber=1&uploadId=x`: each name and value encoded, `name=value` pairs sorted.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(k, false), uri_encode(v, false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `Authorization` header value for a request. `path` is already URI-encoded (the
/// request line's path), `query` already canonical ([`canonical_query`]), `headers` the
/// signed fields as (lower-case name, value) — they must include `host`, `x-amz-date` and
/// `x-amz-content-sha256` — and `payload_sha256` the hex SHA-256 of the body.
pub fn authorization(
    sig: &Signing<'_>,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
) -> String {
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    hs.sort();
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: String = hs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_sha256}");
    let day = sig.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{day}/{}/s3/aws4_request", sig.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        sig.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{}", sig.secret_key).as_bytes(), day.as_bytes());
    for part in [sig.region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        sig.access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 case 6).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// The GET Object example of the S3 documentation ("Signature Calculations for the
    /// Authorization Header", example keys `AKIAIOSFODNN7EXAMPLE`).
    #[test]
    fn matches_the_documented_get_object_example() {
        let sig = Signing {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            amz_date: "20130524T000000Z",
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
            ("x-amz-content-sha256".to_string(), empty.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let auth = authorization(&sig, "GET", "/test.txt", "", &headers, empty);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encoding_and_query_order() {
        assert_eq!(uri_encode("a b/ü~", true), "a%20b/%C3%BC~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query("uploadId=x y&partNumber=1&uploads"),
            "partNumber=1&uploadId=x%20y&uploads="
        );
    }
}
