//! The command line, as clap definitions. Request flags are generated from
//! [`legacyflo_core::Field`], so they always match the core's field names.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use legacyflo_core::{EngineOptions, Field};

use crate::exit::EXIT_CODES_HELP;

/// Default directory of checkpoint state.
pub const DEFAULT_STATE_DIR: &str = ".legacyflo/state";

/// Requests per batch CSV (the service's scheduler limit).
pub const MAX_BATCH_ROWS: usize = 1500;

/// legacyflo: move whole mailboxes out of the services people are leaving into archives
/// they own.
#[derive(Debug, Parser)]
#[command(name = "legacyflo", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Print only errors: no progress, no log lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v info, -vv debug, -vvv trace). `RUST_LOG` is used when neither
    /// -v nor -q is given.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every request type with its status in this build.
    Types(TypesArgs),
    /// Run one request.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunArgs),
    /// Run the requests of a CSV file, one per row.
    #[command(after_help = BATCH_HELP)]
    Batch(BatchArgs),
}

const BATCH_HELP: &str = "\
The CSV's first row names the fields: keys (source_url), flags (--source-url) or the
service's names (Source File); the request type column is `type` or `Request Type`.
Blank cells are unset. Passwords are not accepted: name an environment variable or file
in source_password_env / source_password_file (dest_… for the destination).
At most 1,500 rows. Every row is validated before anything runs; rows are numbered as in
a spreadsheet (the header is row 1).

Exit code: 2 if any row is invalid (then nothing runs); otherwise the worst of the rows:
2 (a row's input proved unusable) over 1 (failed) over 3 (done with skipped messages)
over 0 (done); 130 if interrupted.";

/// Arguments of `types`.
#[derive(Debug, Args)]
pub struct TypesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request type, e.g. MBOX-S3-ZIP (see `legacyflo types`).
    #[arg(value_name = "TYPE")]
    pub request_type: String,
    /// The request's fields.
    #[command(flatten)]
    pub fields: FieldArgs,
    /// How to run it.
    #[command(flatten)]
    pub options: RunOptions,
}

/// Options of `run`.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Run options")]
pub struct RunOptions {
    /// Directory of checkpoint state; re-running the same request with the same directory
    /// resumes where the last run stopped.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: String,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Folders read at once.
    #[arg(long, value_name = "N", default_value_t = default_jobs(),
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// List the folders and count their messages; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Commit (make the output durable and advance the checkpoint) every N messages. A
    /// tuning and testing knob: smaller means less work redone after a crash, more syncs.
    #[arg(long, value_name = "N", default_value_t = EngineOptions::default().commit_every_messages,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_every: u64,
}

fn default_jobs() -> u16 {
    u16::try_from(EngineOptions::default().jobs).unwrap_or(4)
}

/// Arguments of `batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The CSV file of requests.
    #[arg(value_name = "REQUESTS.csv")]
    pub csv: PathBuf,
    /// Requests run at once.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Directory of checkpoint state (each request has its own file in it).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: String,
    /// Also write the reports as a JSON array (one object per row, with `row`).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// List folders and count messages for every row; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The request fields given as flags, one flag per [`Field`] (except the type, which is
/// the positional `TYPE`).
#[derive(Clone, Debug, Default)]
pub struct FieldArgs {
    /// The values given, in [`Field::ALL`] order.
    pub values: Vec<(Field, String)>,
}

/// The fields that are flags of `run`.
pub fn flag_fields() -> impl Iterator<Item = Field> {
    Field::ALL.iter().copied().filter(|f| *f != Field::Type)
}

/// Value name, help heading and help text of a field's flag.
pub fn field_help(f: Field) -> (&'static str, &'static str, &'static str) {
    const SRC: &str = "Source";
    const SEL: &str = "Selection";
    const DST: &str = "Destination";
    const S3: &str = "S3";
    match f {
        Field::Type => ("TYPE", SRC, "The request type"),
        Field::SourceServer => (
            "HOST",
            SRC,
            "Source IMAP server host name or IP (provider types have a default)",
        ),
        Field::SourcePort => ("PORT", SRC, "Source IMAP port [default: 993]"),
        Field::SourceUser => ("USER", SRC, "Source mailbox user ID, without the domain"),
        Field::SourceDomain => (
            "DOMAIN",
            SRC,
            "Source domain; the login becomes USER@DOMAIN",
        ),
        Field::SourcePasswordEnv => (
            "VAR",
            SRC,
            "Name of the environment variable holding the source password",
        ),
        Field::SourcePasswordFile => ("FILE", SRC, "File holding the source password (one line)"),
        Field::SourceUrl => (
            "PATH|URL",
            SRC,
            "Input mailbox file or directory: a path, file:// or s3:// URL",
        ),
        Field::Since => (
            "YYYY-MM-DD",
            SEL,
            "Only messages dated on or after this day (00:00 UTC)",
        ),
        Field::Before => (
            "YYYY-MM-DD",
            SEL,
            "Only messages dated before this day (00:00 UTC)",
        ),
        Field::Folder => (
            "FOLDER",
            SEL,
            "Only this folder and its sub-folders, `/`-separated",
        ),
        Field::DestUrl => (
            "PATH|URL",
            DST,
            "Output file, or a directory ending in `/` (the file is then named after the source)",
        ),
        Field::FileName => (
            "NAME",
            DST,
            "Output file name when --dest-url is a directory",
        ),
        Field::DestServer => ("HOST", DST, "Destination IMAP server"),
        Field::DestPort => ("PORT", DST, "Destination IMAP port [default: 993]"),
        Field::DestUser => ("USER", DST, "Destination (vault) user ID"),
        Field::DestDomain => ("DOMAIN", DST, "Destination domain"),
        Field::DestPasswordEnv => (
            "VAR",
            DST,
            "Name of the environment variable holding the destination password",
        ),
        Field::DestPasswordFile => (
            "FILE",
            DST,
            "File holding the destination password (one line)",
        ),
        Field::DestFolder => (
            "FOLDER",
            DST,
            "Destination folder under which the source's folders are recreated",
        ),
        Field::SourceTls => (
            "MODE",
            SRC,
            "implicit | starttls | none (default: implicit TLS, STARTTLS on port 143)",
        ),
        Field::SourceCaFile => (
            "PEM",
            SRC,
            "CA certificate(s) to trust for the source server",
        ),
        Field::SourceAdminUser => (
            "ADMIN",
            SRC,
            "Admin (master) user logging in on behalf of the source user (AUTHENTICATE PLAIN); the password is the admin's",
        ),
        Field::SourceInsecure => (
            "BOOL",
            SRC,
            "true accepts any source certificate (testing only)",
        ),
        Field::SourceCommandTimeout => (
            "SECS",
            SRC,
            "Deadline of one IMAP command: seconds, or 30s, 10m, 1h [default: 15m]",
        ),
        Field::SourceMaxMessageSize => (
            "BYTES",
            SRC,
            "Largest message read; a larger one is skipped and reported: bytes, or 512K, 64M, 2G [default: 2G]",
        ),
        Field::SourceMaxLineLength => (
            "BYTES",
            SRC,
            "Longest IMAP response line accepted [default: 1M]",
        ),
        Field::DestCommandTimeout => (
            "SECS",
            DST,
            "Deadline of one IMAP command at the destination [default: 15m]",
        ),
        Field::DestMaxMessageSize => (
            "BYTES",
            DST,
            "Largest message read back from the destination [default: 2G]",
        ),
        Field::DestMaxLineLength => (
            "BYTES",
            DST,
            "Longest IMAP response line accepted from the destination [default: 1M]",
        ),
        Field::DestTls => (
            "MODE",
            DST,
            "implicit | starttls | none (default: implicit TLS, STARTTLS on port 143)",
        ),
        Field::DestCaFile => (
            "PEM",
            DST,
            "CA certificate(s) to trust for the destination server",
        ),
        Field::DestInsecure => (
            "BOOL",
            DST,
            "true accepts any destination certificate (testing only)",
        ),
        Field::SourceCredentials => (
            "FILE",
            SRC,
            "Credentials file: Google service-account JSON key or Microsoft app registration JSON",
        ),
        Field::SourceApiUrl => (
            "URL",
            SRC,
            "Base URL of the source API (Gmail API, Graph, EWS) instead of the provider's",
        ),
        Field::SourceTokenUrl => (
            "URL",
            SRC,
            "OAuth2 token endpoint instead of the provider's",
        ),
        Field::S3Endpoint => (
            "URL",
            S3,
            "Endpoint of an S3-compatible store (default: AWS)",
        ),
        Field::S3Region => (
            "REGION",
            S3,
            "S3 region (default: from the AWS configuration, else us-east-1)",
        ),
        Field::S3PathStyle => (
            "BOOL",
            S3,
            "true addresses buckets by path, as most S3-compatible stores need",
        ),
    }
}

fn field_arg(f: Field) -> Arg {
    let (value_name, heading, help) = field_help(f);
    Arg::new(f.key())
        .long(f.flag().trim_start_matches('-').to_string())
        .value_name(value_name)
        .help_heading(heading)
        .help(format!("{help} [service: {}]", f.service_name()))
        .action(ArgAction::Set)
}

impl FromArgMatches for FieldArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = FieldArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for f in flag_fields() {
            if let Some(v) = matches.get_one::<String>(f.key()) {
                self.values.retain(|(g, _)| *g != f);
                self.values.push((f, v.clone()));
            }
        }
        Ok(())
    }
}

impl Args for FieldArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        flag_fields().fold(cmd, |cmd, f| cmd.arg(field_arg(f)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_field_is_a_flag_with_the_core_name() {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("run subcommand");
        for f in flag_fields() {
            let arg = run
                .get_arguments()
                .find(|a| a.get_id().as_str() == f.key())
                .expect("field flag");
            assert_eq!(
                format!("--{}", arg.get_long().unwrap_or_default()),
                f.flag()
            );
        }
    }

    #[test]
    fn flags_parse_into_fields() {
        let cli = Cli::try_parse_from([
            "legacyflo",
            "run",
            "MBOX-S3-ZIP",
            "--source-url",
            "in",
            "--dest-url",
            "out/",
            "--since",
            "2020-01-01",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.request_type, "MBOX-S3-ZIP");
        assert_eq!(
            args.fields.values,
            vec![
                (Field::SourceUrl, "in".to_string()),
                (Field::Since, "2020-01-01".to_string()),
                (Field::DestUrl, "out/".to_string()),
            ]
        );
    }
}
