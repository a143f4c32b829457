//! Progress display and logging: an indicatif bar when stderr is a terminal, plain
//! `tracing` lines (at most every 5 s, plus folder start/done) otherwise, nothing with
//! `--quiet`.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use legacyflo_core::{ProgressEvent, ProgressListener};
use tracing::info;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Plain progress lines are written at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// The bars on screen, when there are any; log lines and stdout output suspend them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A progress bar on stderr (stderr is a terminal).
    Bar,
    /// Plain `tracing` lines.
    Log,
    /// Nothing (`--quiet`).
    Quiet,
}

/// The command's output channels.
#[derive(Clone, Debug)]
pub struct Ui {
    mode: Mode,
}

impl Ui {
    /// Sets up logging and picks the progress mode from `--quiet`, `-v` and whether stderr
    /// is a terminal.
    pub fn init(quiet: bool, verbose: u8) -> Ui {
        let mode = if quiet {
            Mode::Quiet
        } else if io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Log
        };
        if mode == Mode::Bar {
            let _ = BARS.set(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        }
        let default = match (quiet, verbose) {
            (true, _) => "error",
            (false, 0) => "warn,legacyflo::progress=info",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = if quiet || verbose > 0 {
            EnvFilter::new(default)
        } else {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(verbose > 1)
            .with_ansi(io::stderr().is_terminal())
            .with_writer(LogWriter)
            .try_init();
        Ui { mode }
    }

    /// Writes `text` to stdout (bars are hidden meanwhile). A closed stdout is ignored.
    pub fn out(&self, text: &str) {
        suspended(|| {
            let mut out = io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
    }

    /// Writes one line to stderr (bars are hidden meanwhile).
    pub fn err_line(&self, line: &str) {
        suspended(|| {
            let _ = writeln!(io::stderr().lock(), "{line}");
        });
    }

    /// A progress listener for one run; `label` prefixes its lines (`row 3`).
    pub fn listener(&self, label: Option<String>) -> Arc<RunProgress> {
        let counters = Arc::new(Counters::new());
        let bar = match (self.mode, BARS.get()) {
            (Mode::Bar, Some(multi)) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style(&counters));
                if let Some(l) = &label {
                    bar.set_prefix(format!("{l} "));
                }
                bar.set_message("listing folders");
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            _ => None,
        };
        Arc::new(RunProgress {
            mode: self.mode,
            label,
            bar,
            counters,
            total: Mutex::new(None),
            last_log: Mutex::new(Instant::now()),
        })
    }
}

fn suspended<R>(f: impl FnOnce() -> R) -> R {
    match BARS.get() {
        Some(multi) => multi.suspend(f),
        None => f(),
    }
}

/// The `tracing` writer: stderr, with bars suspended while a line is written.
#[derive(Clone, Copy, Debug)]
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        suspended(|| io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[derive(Debug)]
struct Counters {
    /// When the run's progress began.
    origin: Instant,
    /// Messages handled in this run (stored, duplicate or skipped).
    messages: AtomicU64,
    /// Bytes stored in this run.
    bytes: AtomicU64,
    /// Messages skipped in this run.
    skipped: AtomicU64,
    /// Messages done by earlier runs.
    already: AtomicU64,
    /// Nanoseconds from the creation of the counters to the `Started` event.
    start_nanos: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        Counters {
            origin: Instant::now(),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            already: AtomicU64::new(0),
            start_nanos: AtomicU64::new(0),
        }
    }

    /// Messages and bytes per second since the `Started` event.
    fn rates(&self) -> (f64, f64) {
        let start = self.start_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let secs = (self.origin.elapsed().as_secs_f64() - start).max(0.001);
        (
            self.messages.load(Ordering::Relaxed) as f64 / secs,
            self.bytes.load(Ordering::Relaxed) as f64 / secs,
        )
    }
}

/// Formats a byte count: `512 B`, `1.5 MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn with_counter_keys(style: ProgressStyle, counters: &Arc<Counters>) -> ProgressStyle {
    let c1 = counters.clone();
    let c2 = counters.clone();
    let c3 = counters.clone();
    style
        .with_key(
            "bytes_done",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&human_bytes(c1.bytes.load(Ordering::Relaxed)));
            },
        )
        .with_key(
            "msg_rate",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let (m, _) = c2.rates();
                let _ = write!(w, "{m:.0} msg/s");
            },
        )
        .with_key(
            "byte_rate",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let (_, b) = c3.rates();
                let _ = write!(w, "{:.1} MB/s", b / 1e6);
            },
        )
}

fn spinner_style(counters: &Arc<Counters>) -> ProgressStyle {
    let style = ProgressStyle::with_template(
        "{prefix}{spinner} [{elapsed_precise}] {pos} msgs  {bytes_done}  {msg_rate}  {byte_rate}  {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    with_counter_keys(style, counters)
}

fn bar_style(counters: &Arc<Counters>) -> ProgressStyle {
    let style = ProgressStyle::with_template(
        "{prefix}[{elapsed_precise}] {bar:30} {pos}/{len} msgs  {bytes_done}  {msg_rate}  {byte_rate}  ETA {eta}  {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    with_counter_keys(style, counters)
}

/// A [`ProgressListener`] for one run.
#[derive(Debug)]
pub struct RunProgress {
    mode: Mode,
    label: Option<String>,
    bar: Option<ProgressBar>,
    counters: Arc<Counters>,
    total: Mutex<Option<u64>>,
    last_log: Mutex<Instant>,
}

impl RunProgress {
    fn prefix(&self) -> String {
        match &self.label {
            Some(l) => format!("{l}: "),
            None => String::new(),
        }
    }

    /// Removes the bar (call before printing the report).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(multi) = BARS.get() {
                multi.remove(bar);
            }
        }
    }

    fn log_progress(&self, force: bool) {
        let now = Instant::now();
        {
            let Ok(mut last) = self.last_log.try_lock() else {
                return;
            };
            if !force && now.duration_since(*last) < LOG_EVERY {
                return;
            }
            *last = now;
        }
        let c = &self.counters;
        let done = c.already.load(Ordering::Relaxed) + c.messages.load(Ordering::Relaxed);
        let bytes = c.bytes.load(Ordering::Relaxed);
        let (msg_rate, byte_rate) = c.rates();
        let total = self.total.lock().ok().and_then(|t| *t);
        let count = match total {
            Some(t) if t > 0 => {
                let eta = if msg_rate > 0.0 {
                    format!(", ETA {:.0}s", t.saturating_sub(done) as f64 / msg_rate)
                } else {
                    String::new()
                };
                format!(
                    "{done}/{t} messages ({:.0}%){eta}",
                    done as f64 * 100.0 / t as f64
                )
            }
            _ => format!("{done} messages"),
        };
        info!(
            "{}progress: {count}, {} this run, {msg_rate:.0} msg/s, {:.1} MB/s",
            self.prefix(),
            human_bytes(bytes),
            byte_rate / 1e6
        );
    }
}

impl ProgressListener for RunProgress {
    fn event(&self, event: &ProgressEvent) {
        let c = &self.counters;
        match event {
            ProgressEvent::Started {
                folders,
                messages,
                already_done,
            } => {
                c.already.store(*already_done, Ordering::Relaxed);
                c.start_nanos
                    .store(c.origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
                if let Ok(mut t) = self.total.lock() {
                    *t = *messages;
                }
                if let Some(bar) = &self.bar {
                    if let Some(total) = messages {
                        bar.set_style(bar_style(c));
                        bar.set_length(*total);
                    }
                    bar.set_position(*already_done);
                    bar.reset_eta();
                    bar.set_message("");
                }
                if self.mode == Mode::Log {
                    let total = match messages {
                        Some(n) => format!("{n} messages"),
                        None => "message count not known in advance".to_string(),
                    };
                    let resumed = if *already_done > 0 {
                        format!("; resuming, {already_done} already done")
                    } else {
                        String::new()
                    };
                    info!("{}{folders} folders, {total}{resumed}", self.prefix());
                }
            }
            ProgressEvent::FolderStarted(folder) => {
                if let Some(bar) = &self.bar {
                    bar.set_message(folder.to_string());
                }
                if self.mode == Mode::Log {
                    info!("{}folder {folder}: started", self.prefix());
                }
            }
            ProgressEvent::FolderDone(folder) if self.mode == Mode::Log => {
                info!("{}folder {folder}: done", self.prefix());
            }
            ProgressEvent::Message { bytes, .. } => {
                c.messages.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(*bytes, Ordering::Relaxed);
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                if self.mode == Mode::Log {
                    self.log_progress(false);
                }
            }
            ProgressEvent::Skipped { .. } => {
                c.messages.fetch_add(1, Ordering::Relaxed);
                c.skipped.fetch_add(1, Ordering::Relaxed);
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
