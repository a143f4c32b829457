//! The IMAP destination (`VAULTASTIC4` vaults, SkyConnect mailboxes, any IMAP server):
//! messages are `APPEND`ed with their flags and internal dates, the source's folder
//! hierarchy recreated under the destination folder.

mod sink;

pub use sink::{ImapSink, ImapSinkOptions};

use legacyflo_core::request::ImapEndpoint;
use legacyflo_core::{FolderPath, Result};
use legacyflo_sources::imap::{ImapPreset, Side, connect_options};

/// The sink for `DestSpec::Imap { preset, endpoint, folder }`: LOGIN as
/// [`ImapEndpoint::login`] (`user@domain` when a domain is given), TLS from
/// `LEGACYFLO_DEST_TLS` / `LEGACYFLO_DEST_CA_FILE` / `LEGACYFLO_DEST_INSECURE` (default by
/// port). Nothing is connected until [`Sink::open`](legacyflo_core::Sink::open).
pub fn open_imap_sink(
    preset: ImapPreset,
    endpoint: &ImapEndpoint,
    folder: &FolderPath,
) -> Result<ImapSink> {
    let connect = connect_options(endpoint, Side::Dest)?;
    Ok(ImapSink::new(ImapSinkOptions::new(
        connect,
        preset,
        folder.clone(),
    )))
}
