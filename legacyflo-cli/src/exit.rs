//! Exit codes and the error type of the command.

use std::process::ExitCode;

use legacyflo_core::RunStatus;

/// Help text listing the exit codes (shown by `--help`, mirrored in the README).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    done: every selected message was stored
  1    failed: the run stopped on an error (re-run the same command to resume)
  2    bad request: unknown or not-implemented type, invalid or missing field,
       missing or unreadable input file, bad CSV, bad command-line usage;
       fix the request, re-running it as it is will not help
  3    done, but some messages were skipped (listed in the report)
  130  interrupted (Ctrl-C); re-run the same command to resume";

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every selected message was stored (also: a dry run, `types`).
    Done,
    /// A run stopped on an error.
    Failed,
    /// The request was wrong; nothing ran.
    BadRequest,
    /// Finished with skipped messages.
    DoneWithSkips,
    /// Interrupted by a signal.
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::BadRequest => 2,
            Exit::DoneWithSkips => 3,
            Exit::Interrupted => 130,
        }
    }

    /// How bad it is, for the worst-of rule of `batch`: interrupted > bad request >
    /// failed > done with skips > done.
    fn severity(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::DoneWithSkips => 1,
            Exit::Failed => 2,
            Exit::BadRequest => 3,
            Exit::Interrupted => 4,
        }
    }

    /// The worse of two outcomes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// The exit of a run that ended with `status` and no error.
    pub fn from_status(status: RunStatus) -> Exit {
        match status {
            RunStatus::Done | RunStatus::DryRun => Exit::Done,
            RunStatus::DoneWithSkips => Exit::DoneWithSkips,
            RunStatus::Failed => Exit::Failed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// An error that ends the command: one or more lines printed as `error: …` on stderr.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// The problems, one per line.
    pub lines: Vec<String>,
}

impl CliError {
    /// A bad-request error (exit 2) with one line.
    pub fn bad_request(line: impl Into<String>) -> Self {
        CliError {
            exit: Exit::BadRequest,
            lines: vec![line.into()],
        }
    }

    /// A bad-request error (exit 2) with several lines.
    pub fn bad_request_lines(lines: Vec<String>) -> Self {
        CliError {
            exit: Exit::BadRequest,
            lines,
        }
    }

    /// A failure (exit 1) with one line.
    pub fn failed(line: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Failed,
            lines: vec![line.into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_of_rows() {
        assert_eq!(Exit::Done.worst(Exit::DoneWithSkips), Exit::DoneWithSkips);
        assert_eq!(Exit::DoneWithSkips.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::DoneWithSkips), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::Done), Exit::Failed);
        assert_eq!(Exit::Done.worst(Exit::Done), Exit::Done);
    }
}
