//! How a command fails: the message, the problems behind it, and the exit code.
//! This is the one place that maps library errors to what the user sees.

use quiver_core::problem::Problems;

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub problems: Problems,
    pub code: u8,
}

/// Exit code for a lost compare-and-swap (someone else applied first).
pub const EXIT_CONFLICT: u8 = 3;

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), problems: Problems::default(), code: 1 }
    }

    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// Prints the failure: JSON on stdout with `--json`, text on stderr otherwise.
    pub fn report(&self, json: bool) {
        if json {
            let body = serde_json::json!({
                "ok": false,
                "error": self.message,
                "problems": self.problems,
            });
            println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        } else {
            eprintln!("error: {}", self.message);
            for p in self.problems.iter() {
                eprintln!("  - {p}");
            }
        }
    }
}

impl From<quiver_core::Error> for Failure {
    fn from(e: quiver_core::Error) -> Self {
        match e {
            quiver_core::Error::Invalid(problems) => {
                let n = problems.len();
                Failure {
                    message: format!(
                        "{n} problem{} in the definitions; nothing was applied",
                        if n == 1 { "" } else { "s" }
                    ),
                    problems,
                    code: 1,
                }
            }
            e @ quiver_core::Error::Conflict { .. } => {
                Failure { code: EXIT_CONFLICT, ..Failure::new(e.to_string()) }
            }
            other => Failure::new(other.to_string()),
        }
    }
}

impl From<quiver_offline::Error> for Failure {
    fn from(e: quiver_offline::Error) -> Self {
        match e {
            quiver_offline::Error::Core(core) => core.into(),
            other => Failure::new(other.to_string()),
        }
    }
}

impl From<quiver_sample::Error> for Failure {
    fn from(e: quiver_sample::Error) -> Self {
        Failure::new(format!("writing the sample lake: {e}"))
    }
}
