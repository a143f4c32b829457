//! IMAP: a pipelined client ([`client`]), the [`ImapSource`] with provider presets
//! ([`preset`]), and the helpers the vault sink in `legacyflo-sinks` shares.
//!
//! The server is not trusted: every exchange is bounded by [`ConnectOptions`] (a deadline
//! per command, the longest line, the largest message; see [`FrameLimits`]), which a
//! request sets with the `*_command_timeout`, `*_max_message_size` and
//! `*_max_line_length` fields ([`apply_limits`]).
//!
//! TLS settings the request model does not carry yet are read from the environment by
//! [`connect_options`]: `LEGACYFLO_SOURCE_TLS` / `LEGACYFLO_DEST_TLS`
//! (`implicit|starttls|none`), `LEGACYFLO_SOURCE_CA_FILE` / `LEGACYFLO_DEST_CA_FILE`, and
//! `LEGACYFLO_SOURCE_INSECURE` / `LEGACYFLO_DEST_INSECURE` (`1` accepts any certificate).

pub mod client;
mod fetch;
mod folders;
pub mod preset;
mod source;

use std::path::PathBuf;

use legacyflo_core::request::{ImapEndpoint, ImapTls};
use legacyflo_core::{Error, ErrorKind, Result};

pub use client::{
    ConnectOptions, Credentials, FrameLimits, ImapClient, ImapError, TlsMode, TokenProvider,
};
pub use preset::{ImapPreset, Limits};
pub use source::{ImapSource, ImapSourceOptions, header_message_id, message_identity};

/// Which side of a request an endpoint is, for the environment variable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// `LEGACYFLO_SOURCE_*`.
    Source,
    /// `LEGACYFLO_DEST_*`.
    Dest,
}

/// Connect options for `endpoint`: LOGIN with [`ImapEndpoint::login`] and its password
/// (with an admin user: `AUTHENTICATE PLAIN` as the admin on behalf of that login),
/// TLS from the `LEGACYFLO_{SOURCE,DEST}_{TLS,CA_FILE,INSECURE}` variables (default: by
/// port, see [`TlsMode::default_for_port`]). Fails with `InvalidInput` on a bad TLS mode
/// or a missing password.
pub fn connect_options(endpoint: &ImapEndpoint, side: Side) -> Result<ConnectOptions> {
    let Some(password) = endpoint.password.clone() else {
        return Err(Error::backend(
            "imap",
            ErrorKind::InvalidInput,
            format!(
                "no password for {} on {}",
                endpoint.login(),
                endpoint.server
            ),
        ));
    };
    let credentials = match &endpoint.admin {
        Some(admin) => Credentials::Plain {
            authzid: Some(endpoint.login()),
            user: admin.clone(),
            password,
        },
        None => Credentials::Login {
            user: endpoint.login(),
            password,
        },
    };
    connect_options_with(endpoint, side, credentials)
}

/// [`connect_options`] with other `credentials` (XOAUTH2 for the OAuth request types).
pub fn connect_options_with(
    endpoint: &ImapEndpoint,
    side: Side,
    credentials: Credentials,
) -> Result<ConnectOptions> {
    let prefix = match side {
        Side::Source => "LEGACYFLO_SOURCE",
        Side::Dest => "LEGACYFLO_DEST",
    };
    let env = |k: &str| {
        std::env::var(format!("{prefix}_{k}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let mut opts = ConnectOptions::new(endpoint.server.clone(), endpoint.port, credentials);
    if let Some(t) = endpoint.tls {
        opts.tls = match t {
            ImapTls::Implicit => TlsMode::Implicit,
            ImapTls::StartTls => TlsMode::StartTls,
            ImapTls::None => TlsMode::None,
        };
    } else if let Some(t) = env("TLS") {
        opts.tls = TlsMode::parse(&t).ok_or_else(|| {
            Error::backend(
                "imap",
                ErrorKind::InvalidInput,
                format!("{prefix}_TLS=`{t}`: expected implicit, starttls or none"),
            )
        })?;
    }
    opts.ca_file = endpoint
        .ca_file
        .clone()
        .or_else(|| env("CA_FILE").map(PathBuf::from));
    opts.insecure = endpoint.insecure
        || env("INSECURE").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    apply_limits(&mut opts, &endpoint.limits);
    Ok(opts)
}

/// Puts the bounds a request set ([`ImapEndpoint::limits`]) into `opts`; unset ones keep
/// the defaults of [`ConnectOptions::new`].
pub fn apply_limits(opts: &mut ConnectOptions, limits: &legacyflo_core::request::ImapLimits) {
    if let Some(d) = limits.command_timeout {
        opts.command_timeout = d;
    }
    if let Some(n) = limits.max_message_size {
        opts.frame.literal.max_bytes = n;
    }
    if let Some(n) = limits.max_line_length {
        opts.frame.max_line = n;
    }
}

/// The source for `SourceSpec::Imap { preset, endpoint }`.
pub fn open_imap_source(preset: ImapPreset, endpoint: &ImapEndpoint) -> Result<ImapSource> {
    let connect = connect_options(endpoint, Side::Source)?;
    Ok(ImapSource::new(ImapSourceOptions::new(connect, preset)))
}
