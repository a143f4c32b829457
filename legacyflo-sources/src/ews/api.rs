//! EWS SOAP requests (FindFolder, FindItem, GetItem) and how answers are read and
//! classified.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use legacyflo_core::ErrorKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::xml::{self, Node, escape};
use crate::cloud::Verdict;

/// The `RequestServerVersion` sent (understood by Exchange 2013 SP1 and later).
pub const SERVER_VERSION: &str = "Exchange2013_SP1";

const NS: &str = r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages""#;

/// A SOAP envelope with `RequestServerVersion`, `ExchangeImpersonation` of `impersonate`
/// (when given) and `body`.
pub fn envelope(impersonate: Option<&str>, body: &str) -> String {
    let imp = impersonate
        .map(|a| {
            format!(
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>",
                escape(a)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope {NS}><soap:Header><t:RequestServerVersion Version="{SERVER_VERSION}"/>{imp}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// `GetFolder` of distinguished folders (to learn the ids of those skipped).
pub fn get_folder(distinguished: &[&str]) -> String {
    let ids: String = distinguished
        .iter()
        .map(|d| format!(r#"<t:DistinguishedFolderId Id="{d}"/>"#))
        .collect();
    format!(
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>{ids}</m:FolderIds></m:GetFolder>"
    )
}

/// `FindFolder` with deep traversal under `msgfolderroot`, one page.
pub fn find_folder(offset: u64, page: u32) -> String {
    format!(
        r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:DisplayName"/><t:FieldURI FieldURI="folder:FolderClass"/><t:FieldURI FieldURI="folder:ParentFolderId"/></t:AdditionalProperties></m:FolderShape><m:IndexedPageFolderView MaxEntriesReturned="{page}" Offset="{offset}" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>"#
    )
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn compare(op: &str, t: DateTime<Utc>) -> String {
    format!(
        r#"<t:{op}><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURIOrConstant><t:Constant Value="{}"/></t:FieldURIOrConstant></t:{op}>"#,
        iso(t)
    )
}

/// `FindItem` of folder `id`, one indexed page, sorted by `DateTimeReceived`, restricted
/// to `[since, before)`.
pub fn find_item(
    id: &str,
    since: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    offset: u64,
    page: u32,
) -> String {
    let terms: Vec<String> = [
        since.map(|s| compare("IsGreaterThanOrEqualTo", s)),
        before.map(|b| compare("IsLessThan", b)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let restriction = match terms.len() {
        0 => String::new(),
        1 => format!("<m:Restriction>{}</m:Restriction>", terms[0]),
        _ => format!(
            "<m:Restriction><t:And>{}</t:And></m:Restriction>",
            terms.concat()
        ),
    };
    format!(
        r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="message:IsRead"/><t:FieldURI FieldURI="item:IsDraft"/><t:FieldURI FieldURI="item:Categories"/></t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="{page}" Offset="{offset}" BasePoint="Beginning"/>{restriction}<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:FolderId Id="{}"/></m:ParentFolderIds></m:FindItem>"#,
        escape(id)
    )
}

/// `GetItem` of `ids` with their MIME content.
pub fn get_item(ids: &[String]) -> String {
    let ids: String = ids
        .iter()
        .map(|i| format!(r#"<t:ItemId Id="{}"/>"#, escape(i)))
        .collect();
    format!(
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"
    )
}

/// One `…ResponseMessage`: its class, code and text, and the element itself.
#[derive(Debug)]
pub struct ResponseMessage<'a> {
    /// `Success`, `Warning` or `Error`.
    pub class: &'a str,
    /// `NoError` or an `Error…` code.
    pub code: &'a str,
    /// `MessageText`, when given.
    pub text: &'a str,
    /// The element.
    pub node: &'a Node,
}

/// The `ResponseMessages` of an answer's body, in order.
pub fn response_messages(doc: &Node) -> Result<Vec<ResponseMessage<'_>>, String> {
    let body = doc.child("Body").ok_or("no SOAP Body")?;
    let op = body.children.first().ok_or("empty SOAP Body")?;
    let msgs = op
        .child("ResponseMessages")
        .ok_or_else(|| format!("{} has no ResponseMessages", op.name))?;
    Ok(msgs
        .children
        .iter()
        .map(|n| ResponseMessage {
            class: n.attr("ResponseClass").unwrap_or("Error"),
            code: n.child_text("ResponseCode").unwrap_or(""),
            text: n.child_text("MessageText").unwrap_or(""),
            node: n,
        })
        .collect())
}

/// `BackOffMilliseconds` from a `MessageXml` anywhere under `n`.
pub fn back_off(n: &Node) -> Option<Duration> {
    let mx = n.find("MessageXml")?;
    let v = mx
        .all("Value")
        .find(|v| v.attr("Name") == Some("BackOffMilliseconds"))?;
    let ms: u64 = v.text.trim().parse().ok()?;
    Some(Duration::from_millis(ms.min(3_600_000)))
}

/// The code and text of a SOAP fault (`detail/ResponseCode`, else `faultcode`).
fn fault(doc: &Node) -> Option<(String, String)> {
    let f = doc.child("Body")?.child("Fault")?;
    let code = f
        .find("ResponseCode")
        .map(|c| c.text.trim().to_string())
        .or_else(|| f.child_text("faultcode").map(|c| local_code(c).to_string()))?;
    let text = f.child_text("faultstring").unwrap_or("").to_string();
    Some((code, text))
}

fn local_code(c: &str) -> &str {
    c.rsplit_once(':').map_or(c, |(_, l)| l)
}

/// The category of an EWS error code.
pub fn code_kind(code: &str) -> ErrorKind {
    match code {
        "ErrorItemNotFound" | "ErrorFolderNotFound" | "ErrorNonExistentMailbox" => {
            ErrorKind::NotFound
        }
        "ErrorAccessDenied"
        | "ErrorImpersonateUserDenied"
        | "ErrorImpersonationDenied"
        | "ErrorInvalidExchangeImpersonationHeaderData"
        | "ErrorNoApplicableProxyCASServersAvailable" => ErrorKind::PermissionDenied,
        "ErrorInvalidRequest" | "ErrorSchemaValidation" | "ErrorInvalidIdMalformed" => {
            ErrorKind::InvalidInput
        }
        _ => ErrorKind::Protocol,
    }
}

/// EWS's rules: `ErrorServerBusy` (in a fault or a response message) is retried after its
/// `BackOffMilliseconds` (a second when absent); other 5xx answers without a permanent
/// fault code, and 503, are retried with backoff; 401 is bad credentials, 403 denied.
pub fn classify(status: StatusCode, _headers: &HeaderMap, body: &[u8]) -> Verdict {
    let doc = xml::parse(body).ok();
    let busy = doc.as_ref().and_then(|d| {
        let in_fault = fault(d).filter(|(c, _)| c == "ErrorServerBusy");
        let in_msgs = response_messages(d).ok().and_then(|m| {
            m.iter()
                .find(|r| r.code == "ErrorServerBusy")
                .map(|r| r.node.clone())
        });
        match (in_fault, in_msgs) {
            (Some((_, text)), _) => Some((back_off(d), text)),
            (None, Some(n)) => Some((back_off(&n), "ErrorServerBusy".to_string())),
            _ => None,
        }
    });
    if let Some((delay, text)) = busy {
        return Verdict::Throttled(
            Some(delay.unwrap_or(Duration::from_secs(1))),
            format!("ErrorServerBusy: {text}"),
        );
    }
    if status.is_success() {
        return match doc {
            Some(_) => Verdict::Ok,
            None => Verdict::Transient(format!("HTTP {}: the answer is not XML", status.as_u16())),
        };
    }
    let (code, text) = doc.as_ref().and_then(fault).unwrap_or_default();
    let why = if code.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {code}: {text}", status.as_u16())
    };
    match status.as_u16() {
        401 => Verdict::Fail(
            ErrorKind::Unauthenticated,
            format!("{why} (the server refused the credentials)"),
        ),
        403 => Verdict::Fail(ErrorKind::PermissionDenied, why),
        500 if !code.is_empty() && code_kind(&code) != ErrorKind::Protocol => {
            Verdict::Fail(code_kind(&code), why)
        }
        500..=599 => Verdict::Transient(why),
        _ => Verdict::Fail(ErrorKind::Protocol, why),
    }
}
