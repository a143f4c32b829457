//! `legacyflo batch requests.csv`: one request per CSV row, validated first, run N at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use legacyflo_core::request::DestSpec;
use legacyflo_core::{EngineOptions, Field, Location, Params, Request, RunStatus};
use tokio::task::JoinSet;

use super::run::{Context, ExecOptions, Outcome, execute, state_dir, validate, write_json};
use crate::cli::{BatchArgs, MAX_BATCH_ROWS};
use crate::exit::{CliError, Exit};
use crate::progress::{Ui, human_bytes};

/// One request of the CSV.
#[derive(Clone, Debug)]
pub struct Row {
    /// Its row number as a spreadsheet shows it (the header is row 1).
    pub row: u64,
    /// Its fields.
    pub params: Params,
}

/// Maps the header to fields; refuses password columns, unknown and repeated names.
fn header_fields(path: &Path, headers: &csv::StringRecord) -> Result<Vec<Field>, CliError> {
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    for (i, name) in headers.iter().enumerate() {
        let name = if i == 0 {
            name.trim_start_matches('\u{feff}')
        } else {
            name
        };
        match Field::from_name(name) {
            Some(f) if fields.contains(&f) => {
                errors.push(format!("{}: column `{name}` repeats {}", path.display(), f.describe()));
            }
            Some(f) => fields.push(f),
            None if name.to_ascii_lowercase().contains("password") => errors.push(format!(
                "{}: column `{name}`: passwords are not accepted in a CSV; put each password in an \
                 environment variable or a file and give its name in source_password_env or \
                 source_password_file (dest_password_env or dest_password_file for the destination)",
                path.display()
            )),
            None => errors.push(format!(
                "{}: column `{name}` is not a request field; use keys (source_url), flags (--source-url) \
                 or the service's names (Source File); see `legacyflo run --help`",
                path.display()
            )),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::bad_request_lines(errors));
    }
    if !fields.contains(&Field::Type) {
        return Err(CliError::bad_request(format!(
            "{}: no request type column; name one `type` or `Request Type`",
            path.display()
        )));
    }
    Ok(fields)
}

/// Reads the CSV's rows; blank rows are skipped.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::bad_request(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| {
            CliError::bad_request(format!(
                "{}: cannot read the header row: {e}",
                path.display()
            ))
        })?
        .clone();
    let fields = header_fields(path, &headers)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(format!("row {row}: not valid CSV: {e}"));
                continue;
            }
        };
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() > fields.len()
            && record
                .iter()
                .skip(fields.len())
                .any(|c| !c.trim().is_empty())
        {
            errors.push(format!(
                "row {row}: has {} cells but the header names {} fields",
                record.len(),
                fields.len()
            ));
            continue;
        }
        let mut params = Params::new();
        for (field, value) in fields.iter().zip(record.iter()) {
            params.set(*field, value);
        }
        rows.push(Row { row, params });
    }
    if !errors.is_empty() {
        return Err(CliError::bad_request_lines(errors));
    }
    if rows.len() > MAX_BATCH_ROWS {
        return Err(CliError::bad_request(format!(
            "{} has {} requests; at most {MAX_BATCH_ROWS} are allowed per file (the service's scheduler \
             limit). Split it into several files.",
            path.display(),
            rows.len()
        )));
    }
    if rows.is_empty() {
        return Err(CliError::bad_request(format!(
            "{} holds no requests",
            path.display()
        )));
    }
    Ok(rows)
}

/// A location's identity for spotting two rows writing the same output: local paths are
/// made absolute, with `.` components removed.
fn output_key(location: &Location) -> String {
    match location {
        Location::Local(p) => {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            };
            let clean: std::path::PathBuf = abs
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            clean.display().to_string()
        }
        other => other.to_string(),
    }
}

/// Validates every row; rows that would share a checkpoint or an output are refused too.
fn validate_rows(rows: &[Row]) -> Result<Vec<(u64, Request)>, Vec<String>> {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut bad_rows = 0;
    let mut keys: HashMap<String, u64> = HashMap::new();
    let mut outputs: HashMap<String, u64> = HashMap::new();
    for r in rows {
        let request = match validate(&r.params, Context::Batch) {
            Ok(req) => req,
            Err(lines) => {
                bad_rows += 1;
                errors.extend(lines.into_iter().map(|l| format!("row {}: {l}", r.row)));
                continue;
            }
        };
        if let Some(first) = keys.insert(request.state_key(), r.row) {
            bad_rows += 1;
            errors.push(format!("row {}: the same request as row {first}", r.row));
            continue;
        }
        if let DestSpec::File { location, .. } = &request.dest
            && let Some(first) = outputs.insert(output_key(location), r.row)
        {
            bad_rows += 1;
            errors.push(format!(
                "row {}: {}: writes `{location}`, as row {first} does; give each row its own output",
                r.row,
                Field::DestUrl.describe()
            ));
            continue;
        }
        ok.push((r.row, request));
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        errors.push(format!(
            "{bad_rows} of {} rows are invalid; nothing was run",
            rows.len()
        ));
        Err(errors)
    }
}

fn row_line(row: u64, o: &Outcome) -> String {
    let t = o.report.totals();
    let name = &o.report.request_type;
    let resumed = if o.report.resumed { " (resumed)" } else { "" };
    match (o.error_summary(), o.report.status) {
        (Some(e), _) => format!("row {row}: {name} failed: {e}"),
        (None, RunStatus::DryRun) => format!(
            "row {row}: {name} dry run: {} messages in {} folders",
            t.messages,
            o.report.folders.len()
        ),
        (None, status) => {
            let out = o
                .main_output()
                .map(|p| format!(" -> {p}"))
                .unwrap_or_default();
            format!(
                "row {row}: {name} {status}{resumed}: {} messages, {}, {} skipped{out}",
                t.messages,
                human_bytes(t.bytes),
                t.skipped
            )
        }
    }
}

/// `legacyflo batch`.
pub async fn batch(args: BatchArgs, ui: &Ui) -> Result<Exit, CliError> {
    let dir = state_dir(&args.state_dir)?;
    let rows = read_rows(&args.csv)?;
    let requests = validate_rows(&rows).map_err(CliError::bad_request_lines)?;
    let opts = Arc::new(ExecOptions {
        state_dir: dir,
        engine: EngineOptions {
            dry_run: args.dry_run,
            ..EngineOptions::default()
        },
    });
    let started = Instant::now();
    let jobs = usize::from(args.jobs);
    let handle = tokio::runtime::Handle::current();
    let mut pending = requests.into_iter();
    let mut set = JoinSet::new();
    let mut task_rows = HashMap::new();
    let mut results: Vec<(u64, Outcome)> = Vec::new();
    let mut exit = Exit::Done;
    let run_all = async {
        loop {
            while set.len() < jobs {
                let Some((row, request)) = pending.next() else {
                    break;
                };
                let opts = opts.clone();
                let ui = ui.clone();
                let handle = handle.clone();
                // Each request is driven on its own thread: the engine's future is not
                // `Send` (see the report), so it cannot be a spawned task.
                let task = set.spawn_blocking(move || {
                    let progress = ui.listener(Some(format!("row {row}")));
                    let outcome = handle.block_on(execute(&request, &opts, progress.clone()));
                    progress.finish();
                    (row, outcome)
                });
                task_rows.insert(task.id(), row);
            }
            let Some(joined) = set.join_next_with_id().await else {
                break;
            };
            let (row, outcome) = match joined {
                Ok((_, pair)) => pair,
                Err(e) => {
                    let row = task_rows.get(&e.id()).copied().unwrap_or(0);
                    (row, Outcome::crashed(&e.to_string()))
                }
            };
            ui.out(&format!("{}\n", row_line(row, &outcome)));
            exit = exit.worst(outcome.exit);
            results.push((row, outcome));
        }
    };
    tokio::select! {
        () = run_all => {}
        _ = tokio::signal::ctrl_c() => {
            ui.err_line("interrupted; outputs are consistent with their last checkpoints. Re-run the same command to resume.");
            return Ok(Exit::Interrupted);
        }
    }
    results.sort_by_key(|(row, _)| *row);
    let count = |e: Exit| results.iter().filter(|(_, o)| o.exit == e).count();
    let (messages, bytes) = results.iter().fold((0, 0), |(m, b), (_, o)| {
        let t = o.report.totals();
        (m + t.messages, b + t.bytes)
    });
    let bad = count(Exit::BadRequest);
    ui.out(&format!(
        "{} requests: {} done, {} done with skipped messages, {} failed{}; {messages} messages, {} in {:.1}s\n",
        results.len(),
        count(Exit::Done),
        count(Exit::DoneWithSkips),
        count(Exit::Failed),
        if bad > 0 { format!(", {bad} refused") } else { String::new() },
        human_bytes(bytes),
        started.elapsed().as_secs_f64()
    ));
    if let Some(path) = &args.report {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|(row, o)| {
                let mut v = o.report.to_json();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("row".to_string(), serde_json::json!(row));
                }
                v
            })
            .collect();
        write_json(path, &serde_json::Value::Array(list))?;
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    #[test]
    fn header_names_resolve_and_blank_rows_skip() {
        let f = csv_file(
            "\u{feff}Request Type,Source File,--dest-url,since\nMBOX-S3-ZIP,a,b/,\n,,,\nMBOX-S3-ZIP,c,d/,2020-01-01\n",
        );
        let rows = read_rows(f.path()).expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, 2);
        assert_eq!(rows[1].row, 4);
        assert_eq!(rows[1].params.get(Field::Since), Some("2020-01-01"));
        assert_eq!(rows[0].params.get(Field::Since), None);
    }

    #[test]
    fn password_column_is_refused() {
        let f = csv_file("type,source_user,Password\nIMAP-S3-ZIP,u,secret\n");
        let err = read_rows(f.path()).expect_err("refused");
        assert_eq!(err.exit, Exit::BadRequest);
        assert!(err.lines[0].contains("source_password_env"));
        assert!(!err.lines.join("\n").contains("secret\n"));
    }

    #[test]
    fn rows_writing_the_same_output_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().display().to_string();
        let f = csv_file(&format!(
            "type,source_url,dest_url,since\n\
             MBOX-S3-ZIP,{src},out/x.zip,\n\
             MBOX-S3-ZIP,{src},./out/x.zip,2020-01-01\n\
             MBOX-S3-ZIP,{src},out/y.zip,\n\
             MBOX-S3-ZIP,{src},out/y.zip,\n"
        ));
        let rows = read_rows(f.path()).expect("rows");
        let errors = validate_rows(&rows).expect_err("conflicts");
        assert!(
            errors[0].starts_with("row 3: Destination (--dest-url): writes"),
            "{errors:?}"
        );
        assert_eq!(errors[1], "row 5: the same request as row 4");
        assert_eq!(errors[2], "2 of 4 rows are invalid; nothing was run");
    }

    #[test]
    fn too_many_rows_are_refused() {
        let mut text = String::from("type,source_url,dest_url\n");
        for i in 0..=MAX_BATCH_ROWS {
            text.push_str(&format!("MBOX-S3-ZIP,in,out/{i}/\n"));
        }
        let err = read_rows(csv_file(&text).path()).expect_err("refused");
        assert!(err.lines[0].contains("1500"), "{:?}", err.lines);
    }
}
