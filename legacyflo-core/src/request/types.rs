//! The table of request types: `SOURCE-DEST[-FORMAT]`, as the service names them.

use std::fmt;

/// An IMAP server flavour with its defaults and folder rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImapPreset {
    /// Any IMAP server.
    Generic,
    /// Gmail / Google Workspace (`imap.gmail.com`; only `[Gmail]/All Mail`).
    Gmail,
    /// Microsoft 365 / Exchange Online (`outlook.office365.com`).
    O365,
    /// Yahoo Mail (`imap.mail.yahoo.com`).
    Yahoo,
    /// Mithi SkyConnect / Vaultastic (`INBOX.` prefix, `.` separator).
    Mithi,
    /// On-premises Exchange over IMAP.
    Exchange,
    /// A Vaultastic V4 vault.
    Vaultastic4,
}

impl ImapPreset {
    /// The default server host, when the provider has one.
    pub fn default_server(self) -> Option<&'static str> {
        match self {
            ImapPreset::Gmail => Some("imap.gmail.com"),
            ImapPreset::O365 => Some("outlook.office365.com"),
            ImapPreset::Yahoo => Some("imap.mail.yahoo.com"),
            _ => None,
        }
    }
}

/// A mailbox file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// A ZIP of `.eml` files, folders as directories.
    EmlZip,
    /// An Outlook PST file.
    Pst,
    /// mbox files (mboxo/mboxrd), one per folder, or a ZIP of them.
    Mbox,
    /// A Maildir / Maildir++ tree.
    Maildir,
}

impl FileFormat {
    /// The file extension of a single-file output, if the format is a single file.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            FileFormat::EmlZip => Some("zip"),
            FileFormat::Pst => Some("pst"),
            FileFormat::Mbox | FileFormat::Maildir => None,
        }
    }
}

/// Where a request reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// An IMAP mailbox.
    Imap(ImapPreset),
    /// The Gmail API.
    GmailApi,
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services.
    Ews,
    /// A mailbox file, local or in S3.
    File(FileFormat),
    /// Not mail: Teams, Google Chat, drives, S3 housekeeping (named for completeness).
    Peripheral,
}

/// Where a request writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DestKind {
    /// A data file (or tree), local or in S3.
    File(FileFormat),
    /// A mailbox reached over IMAP APPEND (a Vaultastic V4 vault, SkyConnect, Gmail, O365).
    Imap(ImapPreset),
    /// A Microsoft 365 mailbox through Graph.
    Graph,
    /// Not mail (S3 copy/delete, …).
    Peripheral,
}

/// How the source is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Nothing beyond file or bucket access.
    None,
    /// User ID + password (IMAP LOGIN / AUTHENTICATE PLAIN).
    Password,
    /// IMAP XOAUTH2 with a Google service account (domain-wide delegation).
    GoogleServiceAccountImap,
    /// The Gmail API with a Google service account (domain-wide delegation).
    GoogleServiceAccountApi,
    /// IMAP XOAUTH2 with a Microsoft app registration (client credentials).
    MicrosoftAppImap,
    /// Microsoft Graph with an app registration (client credentials).
    MicrosoftAppGraph,
    /// EWS with Basic or OAuth bearer auth and impersonation.
    Ews,
}

/// How far a request type is implemented in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Works end to end.
    Implemented,
    /// Modelled and validated, but its backend is not built yet.
    NotYet,
    /// Not a mail migration; named so the list matches the service, never planned here.
    OutOfScope,
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Support::Implemented => "implemented",
            Support::NotYet => "not yet",
            Support::OutOfScope => "out of scope",
        })
    }
}

/// One request type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestType {
    /// The name, e.g. `GMAIL-S3-ZIP`.
    pub name: &'static str,
    /// Where it reads.
    pub source: SourceKind,
    /// Where it writes.
    pub dest: DestKind,
    /// How the source is authenticated.
    pub auth: AuthMethod,
    /// Implementation status in this build.
    pub support: Support,
    /// One line for `legacyflo types`.
    pub summary: &'static str,
}

impl RequestType {
    /// Looks a type up by name, case-insensitively; aliases (`GMAILIMAP`, …) are accepted.
    pub fn find(name: &str) -> Option<&'static RequestType> {
        let upper = name.trim().to_ascii_uppercase();
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == upper)
            .map(|(_, n)| *n)
            .unwrap_or(upper.as_str());
        REQUEST_TYPES.iter().find(|t| t.name == canonical)
    }

    /// Every request type.
    pub fn all() -> &'static [RequestType] {
        REQUEST_TYPES
    }

    /// The output file format, when the destination is a file.
    pub fn file_format(&self) -> Option<FileFormat> {
        match self.dest {
            DestKind::File(f) => Some(f),
            _ => None,
        }
    }
}

use AuthMethod as A;
use DestKind as D;
use FileFormat as F;
use ImapPreset as P;
use SourceKind as S;
use Support::{Implemented as Yes, NotYet as Later, OutOfScope as Out};

macro_rules! t {
    ($name:expr, $src:expr, $dst:expr, $auth:expr, $sup:expr, $sum:expr) => {
        RequestType {
            name: $name,
            source: $src,
            dest: $dst,
            auth: $auth,
            support: $sup,
            summary: $sum,
        }
    };
}

const ZIP: DestKind = D::File(F::EmlZip);
const PST: DestKind = D::File(F::Pst);
const V4: DestKind = D::Imap(P::Vaultastic4);
const MITHI: DestKind = D::Imap(P::Mithi);

/// Old names the service used, mapped to current ones.
static ALIASES: &[(&str, &str)] = &[
    ("PST", "PST-MITHI-IMAP"),
    ("EML", "EML-MITHI-IMAP"),
    ("MBOX", "MBOX-MITHI-IMAP"),
    ("IMAP", "IMAP-MITHI-IMAP"),
    ("O365IMAP", "O365-MITHI-IMAP"),
    ("GMAILIMAP", "GMAIL-MITHI-IMAP"),
    ("EXCHANGEIMAP", "EXCHANGE-MITHI-IMAP"),
    ("S32S3-DELETE", "S3-DELETE"),
];

static REQUEST_TYPES: &[RequestType] = &[
    // Mailbox -> data file (a local path or s3://).
    t!(
        "IMAP-S3-ZIP",
        S::Imap(P::Generic),
        ZIP,
        A::Password,
        Yes,
        "any IMAP mailbox -> ZIP of .eml"
    ),
    t!(
        "IMAP-S3-PST",
        S::Imap(P::Generic),
        PST,
        A::Password,
        Yes,
        "any IMAP mailbox -> PST"
    ),
    t!(
        "GMAIL-S3-ZIP",
        S::Imap(P::Gmail),
        ZIP,
        A::Password,
        Yes,
        "Gmail over IMAP (password) -> ZIP of .eml"
    ),
    t!(
        "GMAIL-S3-PST",
        S::Imap(P::Gmail),
        PST,
        A::Password,
        Yes,
        "Gmail over IMAP (password) -> PST"
    ),
    t!(
        "GMAILOAUTH-S3-ZIP",
        S::Imap(P::Gmail),
        ZIP,
        A::GoogleServiceAccountImap,
        Yes,
        "Gmail over IMAP XOAUTH2 (service account) -> ZIP of .eml"
    ),
    t!(
        "GMAILOAUTH-S3-PST",
        S::Imap(P::Gmail),
        PST,
        A::GoogleServiceAccountImap,
        Yes,
        "Gmail over IMAP XOAUTH2 (service account) -> PST"
    ),
    t!(
        "GMAILAPI-S3-ZIP",
        S::GmailApi,
        ZIP,
        A::GoogleServiceAccountApi,
        Yes,
        "Gmail API (service account) -> ZIP of .eml"
    ),
    t!(
        "GMAILAPI-S3-PST",
        S::GmailApi,
        PST,
        A::GoogleServiceAccountApi,
        Yes,
        "Gmail API (service account) -> PST"
    ),
    t!(
        "O365-S3-ZIP",
        S::Imap(P::O365),
        ZIP,
        A::MicrosoftAppImap,
        Yes,
        "Microsoft 365 over IMAP XOAUTH2 -> ZIP of .eml"
    ),
    t!(
        "O365-S3-PST",
        S::Imap(P::O365),
        PST,
        A::MicrosoftAppImap,
        Yes,
        "Microsoft 365 over IMAP XOAUTH2 -> PST"
    ),
    t!(
        "M365API-S3-ZIP",
        S::Graph,
        ZIP,
        A::MicrosoftAppGraph,
        Yes,
        "Microsoft 365 via Graph -> ZIP of .eml"
    ),
    t!(
        "M365API-S3-PST",
        S::Graph,
        PST,
        A::MicrosoftAppGraph,
        Yes,
        "Microsoft 365 via Graph -> PST"
    ),
    t!(
        "YAHOO-S3-ZIP",
        S::Imap(P::Yahoo),
        ZIP,
        A::Password,
        Yes,
        "Yahoo Mail over IMAP -> ZIP of .eml"
    ),
    t!(
        "YAHOO-S3-PST",
        S::Imap(P::Yahoo),
        PST,
        A::Password,
        Yes,
        "Yahoo Mail over IMAP -> PST"
    ),
    t!(
        "MITHI-S3-ZIP",
        S::Imap(P::Mithi),
        ZIP,
        A::Password,
        Yes,
        "SkyConnect/Vaultastic over IMAP -> ZIP of .eml"
    ),
    t!(
        "MITHI-S3-PST",
        S::Imap(P::Mithi),
        PST,
        A::Password,
        Yes,
        "SkyConnect/Vaultastic over IMAP -> PST"
    ),
    t!(
        "EXCHANGE-S3-ZIP",
        S::Imap(P::Exchange),
        ZIP,
        A::Password,
        Yes,
        "Exchange over IMAP -> ZIP of .eml"
    ),
    t!(
        "EXCHANGE-S3-PST",
        S::Imap(P::Exchange),
        PST,
        A::Password,
        Yes,
        "Exchange over IMAP -> PST"
    ),
    // File conversions.
    t!(
        "MBOX-S3-ZIP",
        S::File(F::Mbox),
        ZIP,
        A::None,
        Yes,
        "mbox file or tree -> ZIP of .eml"
    ),
    t!(
        "MBOX-S3-PST",
        S::File(F::Mbox),
        PST,
        A::None,
        Yes,
        "mbox file or tree -> PST"
    ),
    t!(
        "MAILDIR-S3-ZIP",
        S::File(F::Maildir),
        ZIP,
        A::None,
        Yes,
        "Maildir / Maildir++ tree -> ZIP of .eml"
    ),
    t!(
        "MAILDIR-S3-PST",
        S::File(F::Maildir),
        PST,
        A::None,
        Yes,
        "Maildir / Maildir++ tree -> PST"
    ),
    t!(
        "EML-S3-ZIP",
        S::File(F::EmlZip),
        ZIP,
        A::None,
        Yes,
        "ZIP of .eml -> ZIP of .eml (re-pack, adds content list)"
    ),
    t!(
        "EML-S3-PST",
        S::File(F::EmlZip),
        PST,
        A::None,
        Yes,
        "ZIP of .eml -> PST"
    ),
    t!(
        "PST-S3-ZIP",
        S::File(F::Pst),
        ZIP,
        A::None,
        Yes,
        "PST -> ZIP of .eml"
    ),
    // legacyflo extensions: local mailbox trees.
    t!(
        "MBOX-MAILDIR",
        S::File(F::Mbox),
        D::File(F::Maildir),
        A::None,
        Yes,
        "mbox -> Maildir++ tree (legacyflo extension)"
    ),
    t!(
        "EML-MAILDIR",
        S::File(F::EmlZip),
        D::File(F::Maildir),
        A::None,
        Yes,
        "ZIP of .eml -> Maildir++ tree (legacyflo extension)"
    ),
    t!(
        "MAILDIR-MBOX",
        S::File(F::Maildir),
        D::File(F::Mbox),
        A::None,
        Yes,
        "Maildir -> mbox tree (legacyflo extension)"
    ),
    t!(
        "EML-MBOX",
        S::File(F::EmlZip),
        D::File(F::Mbox),
        A::None,
        Yes,
        "ZIP of .eml -> mbox tree (legacyflo extension)"
    ),
    t!(
        "MBOX-MBOX",
        S::File(F::Mbox),
        D::File(F::Mbox),
        A::None,
        Yes,
        "mbox -> mboxrd tree (normalise; legacyflo extension)"
    ),
    // Mailbox -> Vaultastic V4 vault.
    t!(
        "IMAP-VAULTASTIC4",
        S::Imap(P::Generic),
        V4,
        A::Password,
        Yes,
        "any IMAP mailbox -> Vaultastic V4 vault"
    ),
    t!(
        "GMAIL-VAULTASTIC4",
        S::Imap(P::Gmail),
        V4,
        A::Password,
        Yes,
        "Gmail over IMAP (password) -> vault"
    ),
    t!(
        "GMAILOAUTH-VAULTASTIC4",
        S::Imap(P::Gmail),
        V4,
        A::GoogleServiceAccountImap,
        Yes,
        "Gmail over IMAP XOAUTH2 -> vault"
    ),
    t!(
        "GMAILAPI-VAULTASTIC4",
        S::GmailApi,
        V4,
        A::GoogleServiceAccountApi,
        Yes,
        "Gmail API -> vault"
    ),
    t!(
        "O365-VAULTASTIC4",
        S::Imap(P::O365),
        V4,
        A::MicrosoftAppImap,
        Yes,
        "Microsoft 365 over IMAP XOAUTH2 -> vault"
    ),
    t!(
        "M365API-VAULTASTIC4",
        S::Graph,
        V4,
        A::MicrosoftAppGraph,
        Yes,
        "Microsoft 365 via Graph -> vault"
    ),
    t!(
        "EXCHANGE-VAULTASTIC4",
        S::Ews,
        V4,
        A::Ews,
        Yes,
        "on-premises Exchange via EWS -> vault"
    ),
    t!(
        "YAHOO-VAULTASTIC4",
        S::Imap(P::Yahoo),
        V4,
        A::Password,
        Yes,
        "Yahoo Mail over IMAP -> vault"
    ),
    t!(
        "MITHI-VAULTASTIC4",
        S::Imap(P::Mithi),
        V4,
        A::Password,
        Yes,
        "SkyConnect/Vaultastic over IMAP -> vault"
    ),
    t!(
        "PST-VAULTASTIC4",
        S::File(F::Pst),
        V4,
        A::None,
        Yes,
        "PST (local or S3) -> vault"
    ),
    t!(
        "EML-VAULTASTIC4",
        S::File(F::EmlZip),
        V4,
        A::None,
        Yes,
        "ZIP of .eml (local or S3) -> vault"
    ),
    t!(
        "MBOX-VAULTASTIC4",
        S::File(F::Mbox),
        V4,
        A::None,
        Yes,
        "mbox, plain or zipped (local or S3) -> vault"
    ),
    t!(
        "MAILDIR-VAULTASTIC4",
        S::File(F::Maildir),
        V4,
        A::None,
        Yes,
        "Maildir tree -> vault (legacyflo extension)"
    ),
    // Into SkyConnect/Vaultastic mailboxes (the service's older family).
    t!(
        "PST-MITHI-IMAP",
        S::File(F::Pst),
        MITHI,
        A::None,
        Yes,
        "PST -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "EML-MITHI-IMAP",
        S::File(F::EmlZip),
        MITHI,
        A::None,
        Yes,
        "ZIP of .eml -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "MBOX-MITHI-IMAP",
        S::File(F::Mbox),
        MITHI,
        A::None,
        Yes,
        "mbox (zipped) -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "IMAP-MITHI-IMAP",
        S::Imap(P::Generic),
        MITHI,
        A::Password,
        Yes,
        "any IMAP -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "O365-MITHI-IMAP",
        S::Imap(P::O365),
        MITHI,
        A::MicrosoftAppImap,
        Later,
        "Microsoft 365 over IMAP -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "GMAIL-MITHI-IMAP",
        S::Imap(P::Gmail),
        MITHI,
        A::Password,
        Yes,
        "Gmail over IMAP -> SkyConnect/Vaultastic mailbox"
    ),
    t!(
        "EXCHANGE-MITHI-IMAP",
        S::Imap(P::Exchange),
        MITHI,
        A::Password,
        Yes,
        "Exchange over IMAP -> SkyConnect/Vaultastic mailbox"
    ),
    // Mailbox to mailbox.
    t!(
        "GMAIL-O365-IMAP",
        S::Imap(P::Gmail),
        D::Imap(P::O365),
        A::Password,
        Later,
        "Gmail -> Microsoft 365 over IMAP"
    ),
    t!(
        "O365-GMAIL-IMAP",
        S::Imap(P::O365),
        D::Imap(P::Gmail),
        A::Password,
        Later,
        "Microsoft 365 -> Gmail over IMAP"
    ),
    t!(
        "YAHOO-GMAIL-IMAP",
        S::Imap(P::Yahoo),
        D::Imap(P::Gmail),
        A::Password,
        Later,
        "Yahoo -> Gmail over IMAP"
    ),
    // Into Microsoft 365 through Graph.
    t!(
        "PST-M365API",
        S::File(F::Pst),
        D::Graph,
        A::MicrosoftAppGraph,
        Later,
        "PST -> Microsoft 365 mailbox via Graph"
    ),
    t!(
        "EML-M365API",
        S::File(F::EmlZip),
        D::Graph,
        A::MicrosoftAppGraph,
        Later,
        "ZIP of .eml -> Microsoft 365 mailbox via Graph"
    ),
    t!(
        "VAULTASTIC4-M365API",
        S::Imap(P::Vaultastic4),
        D::Graph,
        A::MicrosoftAppGraph,
        Later,
        "vault -> Microsoft 365 mailbox via Graph"
    ),
    // Peripheral (not mail): listed to match the service.
    t!(
        "TEAMS-VAULTASTIC4",
        S::Peripheral,
        V4,
        A::MicrosoftAppGraph,
        Out,
        "Teams chats -> vault (not mail)"
    ),
    t!(
        "TEAMS-S3-ZIP",
        S::Peripheral,
        ZIP,
        A::MicrosoftAppGraph,
        Out,
        "Teams chats -> ZIP (not mail)"
    ),
    t!(
        "TEAMS-S3-PST",
        S::Peripheral,
        PST,
        A::MicrosoftAppGraph,
        Out,
        "Teams chats -> PST (not mail)"
    ),
    t!(
        "GOOGLECHAT-VAULTASTIC4",
        S::Peripheral,
        V4,
        A::GoogleServiceAccountApi,
        Out,
        "Google Chat -> vault (not mail)"
    ),
    t!(
        "GOOGLECHAT-S3-ZIP",
        S::Peripheral,
        ZIP,
        A::GoogleServiceAccountApi,
        Out,
        "Google Chat -> ZIP (not mail)"
    ),
    t!(
        "GOOGLECHAT-S3-PST",
        S::Peripheral,
        PST,
        A::GoogleServiceAccountApi,
        Out,
        "Google Chat -> PST (not mail)"
    ),
    t!(
        "ONEDRIVE-S3-ZIP",
        S::Peripheral,
        ZIP,
        A::MicrosoftAppGraph,
        Out,
        "OneDrive files -> ZIP (not mail)"
    ),
    t!(
        "GDRIVE-S3-ZIP",
        S::Peripheral,
        ZIP,
        A::GoogleServiceAccountApi,
        Out,
        "Google Drive files -> ZIP (not mail)"
    ),
    t!(
        "SHAREPOINT-S3-ZIP",
        S::Peripheral,
        ZIP,
        A::MicrosoftAppGraph,
        Out,
        "SharePoint files -> ZIP (not mail)"
    ),
    t!(
        "S32S3-COPY",
        S::Peripheral,
        D::Peripheral,
        A::None,
        Out,
        "copy/sync files between buckets (not mail)"
    ),
    t!(
        "S3-DELETE",
        S::Peripheral,
        D::Peripheral,
        A::None,
        Out,
        "delete files from a bucket (not mail)"
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_found() {
        let mut names: Vec<_> = REQUEST_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate request type names");
        assert_eq!(
            RequestType::find("gmail-s3-zip").map(|t| t.name),
            Some("GMAIL-S3-ZIP")
        );
        assert_eq!(
            RequestType::find("GMAILIMAP").map(|t| t.name),
            Some("GMAIL-MITHI-IMAP")
        );
        assert!(RequestType::find("NOPE-S3-ZIP").is_none());
    }

    #[test]
    fn every_type_named_in_the_brief_exists() {
        for n in [
            "GMAIL-S3-ZIP",
            "GMAILOAUTH-S3-PST",
            "GMAILAPI-S3-PST",
            "O365-S3-ZIP",
            "M365API-S3-PST",
            "YAHOO-S3-ZIP",
            "MITHI-S3-ZIP",
            "IMAP-VAULTASTIC4",
            "GMAIL-VAULTASTIC4",
            "O365-VAULTASTIC4",
            "EXCHANGE-VAULTASTIC4",
            "PST-VAULTASTIC4",
            "EML-VAULTASTIC4",
            "MBOX-VAULTASTIC4",
            "MBOX-S3-ZIP",
            "MBOX-S3-PST",
            "EML-S3-PST",
            "PST-S3-ZIP",
            "MAILDIR-S3-ZIP",
            "MAILDIR-S3-PST",
            "M365API-VAULTASTIC4",
            "GMAILOAUTH-VAULTASTIC4",
        ] {
            assert!(RequestType::find(n).is_some(), "{n} missing");
        }
    }
}
