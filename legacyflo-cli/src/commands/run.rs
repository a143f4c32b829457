//! `legacyflo run`: one request. Also the validation and execution shared with `batch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use legacyflo_core::request::{RequestErrors, Support};
use legacyflo_core::{
    Engine, EngineOptions, Error, ErrorKind, Field, LocalStateStore, OutputKind, Params,
    ProgressListener, Report, Request, RequestType, RunState, RunStatus, StateStore,
};
use legacyflo_s3::S3StateStore;
use tracing::debug;

use crate::cli::RunArgs;
use crate::exit::{CliError, Exit};
use crate::progress::Ui;

/// Where a request comes from, for naming fields in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Flags of `run` (the type is the positional `TYPE`).
    Run,
    /// A CSV row (the type is the `type` column).
    Batch,
}

/// How a field is named in an error: `Since (--since)`.
pub fn describe(field: Field, ctx: Context) -> String {
    match (field, ctx) {
        (Field::Type, Context::Run) => format!("{} (TYPE)", field.service_name()),
        (Field::Type, Context::Batch) => format!("{} (type)", field.service_name()),
        _ => field.describe(),
    }
}

/// One line per problem: `Since (--since): \`2020-13-01\` is not a date in YYYY-MM-DD form`.
pub fn error_lines(errs: &RequestErrors, ctx: Context) -> Vec<String> {
    errs.0
        .iter()
        .map(|e| format!("{}: {}", describe(e.field, ctx), e.message))
        .collect()
}

/// Validates `params` into a request this build can run; every problem is a line.
pub fn validate(params: &Params, ctx: Context) -> Result<Request, Vec<String>> {
    let known = params.get(Field::Type).and_then(RequestType::find);
    match Request::from_params(params) {
        Ok(request) => match support_problem(request.request_type) {
            None => Ok(request),
            Some(line) => Err(vec![line]),
        },
        Err(errs) => {
            let mut lines = error_lines(&errs, ctx);
            if known.is_none()
                && errs.has(Field::Type)
                && let (Some(name), Some(first)) =
                    (params.get(Field::Type).and_then(suggest), lines.first_mut())
            {
                first.push_str(&format!(" (did you mean {name}?)"));
            }
            if let Some(line) = known.and_then(support_problem) {
                lines.push(line);
            }
            Err(lines)
        }
    }
}

fn support_problem(t: &RequestType) -> Option<String> {
    match t.support {
        Support::Implemented => None,
        Support::NotYet => Some(format!(
            "{} is not implemented yet in this build (see `legacyflo types`)",
            t.name
        )),
        Support::OutOfScope => Some(format!(
            "{} is out of scope: legacyflo moves mail, and this type does not (see `legacyflo types`)",
            t.name
        )),
    }
}

/// The closest request type name to `name`, if one is close.
fn suggest(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    RequestType::all()
        .iter()
        .map(|t| (edit_distance(&upper, t.name), t.name))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// Where checkpoints are kept, from `--state-dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateDir {
    /// A local directory.
    Local(PathBuf),
    /// A prefix in an S3 bucket (`s3://bucket/prefix`), reached with the request's S3
    /// fields (`--s3-endpoint`, `--s3-region`, `--s3-path-style`) and the AWS credentials.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (may be empty).
        prefix: String,
    },
}

impl StateDir {
    /// The state store of `request` in this place.
    pub fn store(&self, request: &Request) -> Arc<dyn StateStore> {
        match self {
            StateDir::Local(dir) => Arc::new(LocalStateStore::new(dir, &request.state_key())),
            StateDir::S3 { bucket, prefix } => Arc::new(S3StateStore::new(
                request.s3.clone(),
                bucket,
                prefix,
                &request.state_key(),
            )),
        }
    }

    /// The local directory, if the state is local.
    pub fn local(&self) -> Option<&Path> {
        match self {
            StateDir::Local(p) => Some(p),
            StateDir::S3 { .. } => None,
        }
    }
}

/// The checkpoint place from `--state-dir`: a local directory, `file://` path or
/// `s3://bucket/prefix`.
pub fn state_dir(arg: &str) -> Result<StateDir, CliError> {
    if let Some(rest) = arg.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(CliError::bad_request(format!(
                "--state-dir {arg}: an s3:// state directory needs a bucket (s3://bucket/prefix)"
            )));
        }
        return Ok(StateDir::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        });
    }
    if arg.contains("://") && !arg.starts_with("file://") {
        return Err(CliError::bad_request(format!(
            "--state-dir {arg}: not a local directory or s3:// URL"
        )));
    }
    Ok(StateDir::Local(PathBuf::from(
        arg.strip_prefix("file://").unwrap_or(arg),
    )))
}

/// How requests are run.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Where checkpoints are kept.
    pub state_dir: StateDir,
    /// Engine tunables (including `dry_run`).
    pub engine: EngineOptions,
}

/// The end of one request.
#[derive(Debug)]
pub struct Outcome {
    /// Its report (a failed one when the request could not start).
    pub report: Report,
    /// Its exit code.
    pub exit: Exit,
    /// The error that stopped it, one line per problem (empty when none).
    pub errors: Vec<String>,
    /// The checkpoint file, when one was used.
    pub state_file: Option<PathBuf>,
    /// Whether the engine ran (false when the source or sink could not be opened).
    pub ran: bool,
}

impl Outcome {
    fn not_started(request: &Request, e: &Error) -> Outcome {
        let mut report = Report::new(request.request_type.name);
        report.status = RunStatus::Failed;
        report.error = Some(e.to_string());
        let bad = e.is_bad_request()
            || matches!(
                e.kind(),
                ErrorKind::Unsupported | ErrorKind::InvalidInput | ErrorKind::NotFound
            );
        Outcome {
            report,
            exit: if bad { Exit::BadRequest } else { Exit::Failed },
            errors: lines_of(e),
            state_file: None,
            ran: false,
        }
    }

    /// The outcome of a request whose task stopped unexpectedly.
    pub fn crashed(why: &str) -> Outcome {
        let mut report = Report::new("?");
        report.status = RunStatus::Failed;
        report.error = Some(format!("the request stopped unexpectedly: {why}"));
        Outcome {
            errors: report.error.iter().cloned().collect(),
            report,
            exit: Exit::Failed,
            state_file: None,
            ran: false,
        }
    }

    /// The error lines joined into one.
    pub fn error_summary(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }

    /// The data output (archive or mailbox), if one was written.
    pub fn main_output(&self) -> Option<&str> {
        self.report
            .outputs
            .iter()
            .find(|o| o.kind != OutputKind::ContentList)
            .map(|o| o.location.as_str())
    }
}

/// The checkpoint file of `request` under `dir`.
pub fn state_file(dir: &Path, request: &Request) -> PathBuf {
    LocalStateStore::new(dir, &request.state_key())
        .path()
        .to_path_buf()
}

/// Whether the checkpoint at `path` belongs to a finished run.
pub fn already_finished(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| RunState::from_bytes(&b).ok())
        .is_some_and(|s| s.finished)
}

/// A finished run whose local outputs were deleted since is started over: its checkpoint
/// is removed (with a warning), so that the command writes the outputs again instead of
/// reporting files that no longer exist.
pub fn forget_if_outputs_gone(path: &Path) {
    let Some(state) = std::fs::read(path)
        .ok()
        .and_then(|b| RunState::from_bytes(&b).ok())
    else {
        return;
    };
    if !state.finished {
        return;
    }
    let gone: Vec<&str> = state
        .outputs
        .iter()
        .map(|o| o.location.as_str())
        .filter(|l| !l.contains("://") && !Path::new(l).exists())
        .collect();
    if gone.is_empty() {
        return;
    }
    tracing::warn!(
        message = "the outputs of the finished run are gone; starting over",
        missing = %gone.join(", "),
        state = %path.display()
    );
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(message = "cannot remove the old checkpoint", state = %path.display(), error = %e);
    }
}

/// Opens the request's source and sink and runs it through the engine.
pub async fn execute(
    request: &Request,
    opts: &ExecOptions,
    listener: Arc<dyn ProgressListener>,
) -> Outcome {
    let source = match legacyflo_sources::open_source(request) {
        Ok(s) => s,
        Err(e) => return Outcome::not_started(request, &e),
    };
    let sink = match legacyflo_sinks::open_sink(request) {
        Ok(s) => s,
        Err(e) => return Outcome::not_started(request, &e),
    };
    let mut engine = Engine::new(request.request_type.name, source, sink)
        .filter(request.filter.clone())
        .options(opts.engine.clone())
        .listener(listener);
    let mut state_file_used = None;
    if !opts.engine.dry_run {
        // A dry run neither reads nor writes checkpoints: it always lists and counts.
        if let Some(dir) = opts.state_dir.local() {
            let path = state_file(dir, request);
            forget_if_outputs_gone(&path);
            state_file_used = Some(path);
        }
        engine = engine.state(opts.state_dir.store(request));
    }
    let result = engine.run().await;
    let exit = match &result.error {
        // Retrying cannot help: the request or its input is wrong.
        Some(e)
            if e.is_bad_request()
                || matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) =>
        {
            Exit::BadRequest
        }
        Some(_) => Exit::Failed,
        None => Exit::from_status(result.report.status),
    };
    Outcome {
        errors: result.error.as_ref().map(lines_of).unwrap_or_default(),
        report: result.report,
        exit,
        state_file: state_file_used,
        ran: true,
    }
}

/// The lines of an error: one per field for an invalid request, else its message.
fn lines_of(e: &Error) -> Vec<String> {
    match e {
        Error::InvalidRequest(errs) => error_lines(errs, Context::Run),
        other => vec![other.to_string()],
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failed(format!("cannot serialise the report: {e}")))?;
    text.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

/// `legacyflo run TYPE [flags]`.
pub async fn run(args: RunArgs, ui: &Ui) -> Result<Exit, CliError> {
    let dir = state_dir(&args.options.state_dir)?;
    let mut params = Params::new();
    params.set(Field::Type, args.request_type.as_str());
    for (field, value) in &args.fields.values {
        params.set(*field, value.as_str());
    }
    let request = validate(&params, Context::Run).map_err(CliError::bad_request_lines)?;
    let opts = ExecOptions {
        state_dir: dir,
        engine: EngineOptions {
            jobs: usize::from(args.options.jobs),
            dry_run: args.options.dry_run,
            commit_every_messages: args.options.commit_every,
            ..EngineOptions::default()
        },
    };
    let state_desc = opts.state_dir.store(&request).describe();
    if let Some(dir) = opts.state_dir.local() {
        let state = state_file(dir, &request);
        if !opts.engine.dry_run {
            forget_if_outputs_gone(&state);
        }
        if !opts.engine.dry_run && already_finished(&state) {
            ui.err_line(&format!(
                "note: this request already finished (checkpoint {}); nothing to do. Delete that file to run it again.",
                state.display()
            ));
        }
    }
    debug!(request_type = request.request_type.name, state = %state_desc, "starting");
    let progress = ui.listener(None);
    let outcome = tokio::select! {
        o = execute(&request, &opts, progress.clone()) => o,
        _ = tokio::signal::ctrl_c() => {
            progress.finish();
            ui.err_line("interrupted; the output is consistent with the last checkpoint. Re-run the same command to resume.");
            return Ok(Exit::Interrupted);
        }
    };
    progress.finish();
    if let Some(path) = &args.options.report {
        write_json(path, &outcome.report.to_json())?;
    }
    if outcome.exit == Exit::BadRequest || !outcome.ran {
        // Nothing ran: say why, without an empty report.
        for e in &outcome.errors {
            ui.err_line(&format!("error: {e}"));
        }
        return Ok(outcome.exit);
    }
    ui.out(&outcome.report.to_string());
    for e in &outcome.errors {
        ui.err_line(&format!("error: {e}"));
    }
    if let Some(state) = outcome.state_file.as_ref().filter(|p| p.exists())
        && !outcome.errors.is_empty()
    {
        ui.err_line(&format!(
            "the checkpoint is in {}; re-run the same command to resume",
            state.display()
        ));
    } else if opts.state_dir.local().is_none() && !outcome.errors.is_empty() {
        ui.err_line(&format!(
            "the checkpoint is in {state_desc}; re-run the same command to resume"
        ));
    }
    Ok(outcome.exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(suggest("MBOX-S3-ZIPP"), Some("MBOX-S3-ZIP"));
        assert_eq!(suggest("mbox-s3-zp"), Some("MBOX-S3-ZIP"));
        assert_eq!(suggest("COMPLETELY-DIFFERENT"), None);
    }

    #[test]
    fn state_dirs_are_local_or_s3() {
        assert_eq!(
            state_dir("s3://bucket/state/").ok(),
            Some(StateDir::S3 {
                bucket: "bucket".into(),
                prefix: "state".into()
            })
        );
        assert!(state_dir("s3:///state").is_err());
        assert!(state_dir("http://x/state").is_err());
        assert_eq!(
            state_dir("x/y").ok(),
            Some(StateDir::Local(PathBuf::from("x/y")))
        );
    }

    #[test]
    fn bad_date_names_the_field() {
        let p = Params::new()
            .with(Field::Type, "MBOX-S3-ZIP")
            .with(Field::SourceUrl, ".")
            .with(Field::DestUrl, "out/")
            .with(Field::Since, "2020-13-01");
        let lines = validate(&p, Context::Run).err().unwrap_or_default();
        assert_eq!(
            lines,
            vec!["Since (--since): `2020-13-01` is not a date in YYYY-MM-DD form".to_string()]
        );
    }
}
