//! The S3 fields of a request: endpoint, region and addressing style.

use super::{Field, Params, RequestErrors};

/// How to reach S3 for every `s3://` location of a request (source, destination, state).
///
/// All fields are optional: without them the standard AWS configuration applies
/// (environment, profile, instance metadata) and buckets are addressed virtual-host style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Endpoint URL of an S3-compatible store (`http://127.0.0.1:9000`); AWS when `None`.
    pub endpoint: Option<String>,
    /// Region (`eu-west-1`); from the AWS configuration when `None`.
    pub region: Option<String>,
    /// Address buckets by path (`endpoint/bucket/key`) instead of by host name.
    pub path_style: bool,
}

impl S3Settings {
    /// Reads and validates [`Field::S3Endpoint`], [`Field::S3Region`] and
    /// [`Field::S3PathStyle`]; each problem is pushed naming its field.
    pub(super) fn parse(params: &Params, errs: &mut RequestErrors) -> S3Settings {
        let endpoint = params.get(Field::S3Endpoint).and_then(|v| {
            let ok = ["http://", "https://"].iter().any(|p| {
                v.strip_prefix(p)
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            }) && !v.contains(char::is_whitespace);
            if ok {
                Some(v.trim_end_matches('/').to_string())
            } else {
                errs.push(
                    Field::S3Endpoint,
                    format!("`{v}` is not an http:// or https:// URL"),
                );
                None
            }
        });
        let region = params.get(Field::S3Region).and_then(|v| {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if ok {
                Some(v.to_string())
            } else {
                errs.push(
                    Field::S3Region,
                    format!("`{v}` is not a region name (lowercase letters, digits and `-`)"),
                );
                None
            }
        });
        let path_style = match params
            .get(Field::S3PathStyle)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                errs.push(
                    Field::S3PathStyle,
                    format!("`{other}` is not true or false"),
                );
                false
            }
        };
        S3Settings {
            endpoint,
            region,
            path_style,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(Field, &str)]) -> (S3Settings, RequestErrors) {
        let mut p = Params::new();
        for (f, v) in pairs {
            p = p.with(*f, *v);
        }
        let mut errs = RequestErrors::default();
        (S3Settings::parse(&p, &mut errs), errs)
    }

    #[test]
    fn defaults_and_valid_values() {
        let (s, e) = parse(&[]);
        assert!(e.0.is_empty());
        assert_eq!(s, S3Settings::default());
        let (s, e) = parse(&[
            (Field::S3Endpoint, "http://127.0.0.1:9000/"),
            (Field::S3Region, "eu-west-1"),
            (Field::S3PathStyle, "TRUE"),
        ]);
        assert!(e.0.is_empty(), "{e}");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(s.path_style);
    }

    #[test]
    fn bad_values_name_their_field() {
        let (_, e) = parse(&[
            (Field::S3Endpoint, "ftp://x"),
            (Field::S3Region, "EU West"),
            (Field::S3PathStyle, "maybe"),
        ]);
        assert!(e.has(Field::S3Endpoint), "{e}");
        assert!(e.has(Field::S3Region), "{e}");
        assert!(e.has(Field::S3PathStyle), "{e}");
        let (_, e) = parse(&[(Field::S3Endpoint, "http://")]);
        assert!(e.has(Field::S3Endpoint), "{e}");
    }
}
