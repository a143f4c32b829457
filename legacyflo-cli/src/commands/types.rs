//! `legacyflo types`: the table of request types.

use legacyflo_core::request::{AuthMethod, DestKind, FileFormat, ImapPreset, SourceKind};
use legacyflo_core::{RequestType, request::Support};

use crate::cli::TypesArgs;
use crate::exit::{CliError, Exit};
use crate::progress::Ui;

/// Prints every request type, one line each (or JSON).
pub fn types(args: &TypesArgs, ui: &Ui) -> Result<Exit, CliError> {
    let all = RequestType::all();
    if args.json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "support": support_key(t.support),
                    "summary": t.summary,
                    "source": source_name(t.source),
                    "destination": dest_name(t.dest),
                    "auth": auth_name(t.auth),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&list)
            .map_err(|e| CliError::failed(format!("cannot serialise the type list: {e}")))?;
        ui.out(&format!("{text}\n"));
        return Ok(Exit::Done);
    }
    let width = all.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for t in all {
        text.push_str(&format!(
            "{:<width$}  {:<12}  {}\n",
            t.name,
            t.support.to_string(),
            t.summary
        ));
    }
    let implemented = all
        .iter()
        .filter(|t| t.support == Support::Implemented)
        .count();
    text.push_str(&format!(
        "\n{} request types; {implemented} implemented in this build. Run one with `legacyflo run TYPE [flags]` (see `legacyflo run --help`).\n",
        all.len()
    ));
    ui.out(&text);
    Ok(Exit::Done)
}

fn support_key(s: Support) -> &'static str {
    match s {
        Support::Implemented => "implemented",
        Support::NotYet => "not_yet",
        Support::OutOfScope => "out_of_scope",
    }
}

fn preset_name(p: ImapPreset) -> &'static str {
    match p {
        ImapPreset::Generic => "imap",
        ImapPreset::Gmail => "imap:gmail",
        ImapPreset::O365 => "imap:o365",
        ImapPreset::Yahoo => "imap:yahoo",
        ImapPreset::Mithi => "imap:mithi",
        ImapPreset::Exchange => "imap:exchange",
        ImapPreset::Vaultastic4 => "imap:vaultastic4",
    }
}

fn format_name(f: FileFormat) -> &'static str {
    match f {
        FileFormat::EmlZip => "file:eml-zip",
        FileFormat::Pst => "file:pst",
        FileFormat::Mbox => "file:mbox",
        FileFormat::Maildir => "file:maildir",
    }
}

fn source_name(s: SourceKind) -> &'static str {
    match s {
        SourceKind::Imap(p) => preset_name(p),
        SourceKind::GmailApi => "gmail-api",
        SourceKind::Graph => "graph",
        SourceKind::Ews => "ews",
        SourceKind::File(f) => format_name(f),
        SourceKind::Peripheral => "other",
    }
}

fn dest_name(d: DestKind) -> &'static str {
    match d {
        DestKind::File(f) => format_name(f),
        DestKind::Imap(p) => preset_name(p),
        DestKind::Graph => "graph",
        DestKind::Peripheral => "other",
    }
}

fn auth_name(a: AuthMethod) -> &'static str {
    match a {
        AuthMethod::None => "none",
        AuthMethod::Password => "password",
        AuthMethod::GoogleServiceAccountImap => "google-service-account-imap",
        AuthMethod::GoogleServiceAccountApi => "google-service-account-api",
        AuthMethod::MicrosoftAppImap => "microsoft-app-imap",
        AuthMethod::MicrosoftAppGraph => "microsoft-app-graph",
        AuthMethod::Ews => "ews",
    }
}
