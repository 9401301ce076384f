//! Running `altinn-pep` once (`doctor`, `explain`): its exit status, standard output and
//! standard error, with a token on standard input if given.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::pep_fakes::SUBSCRIPTION_KEY;

/// Upper bound for one run: a failure bound, not a timing assertion.
const RUN: Duration = Duration::from_secs(120);

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    /// The line of `step` (`ok   grant: …`, `FAIL pdp call: …`), failing the test without one.
    pub(crate) fn step(&self, step: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.get(5..).is_some_and(|rest| rest.starts_with(&format!("{step}:"))))
            .unwrap_or_else(|| panic!("no line for {step:?} in:\n{}", self.stdout))
    }
}

/// Runs `altinn-pep ARGS` with `ALTINN_SUBSCRIPTION_KEY` = `subscription_key` (the fakes' by
/// default) and `stdin` on standard input.
pub(crate) async fn run(args: &[&str], subscription_key: Option<&str>, stdin: Option<&str>, dir: &Path) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_altinn-pep"));
    cmd.args(args)
        .current_dir(dir)
        .env("ALTINN_SUBSCRIPTION_KEY", subscription_key.unwrap_or(SUBSCRIPTION_KEY))
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("the altinn-pep binary");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = tokio::time::timeout(RUN, child.wait_with_output())
        .await
        .expect("altinn-pep did not finish")
        .unwrap();
    Ran {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
