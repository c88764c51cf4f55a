//! The summary: one row per check, printed as a table at the end.

use std::time::Instant;

/// One line of the summary.
pub(super) struct Row {
    pub(super) suite: String,
    pub(super) check: &'static str,
    pub(super) result: Result<String, String>,
    pub(super) secs: f64,
}

/// Collects the results of one run.
#[derive(Default)]
pub(super) struct Report {
    pub(super) rows: Vec<Row>,
}

impl Report {
    /// Runs `f` as check `check` of `suite`, records and prints its result.
    pub(super) fn check<T>(
        &mut self,
        suite: &str,
        check: &'static str,
        f: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> Option<T> {
        let t = Instant::now();
        eprintln!("[real-kernel {suite}] {check} ...");
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        let (value, result) = match r {
            Ok((v, note)) => (Some(v), Ok(note)),
            Err(e) => (None, Err(format!("{e:#}"))),
        };
        match &result {
            Ok(n) => eprintln!("[real-kernel {suite}] {check}: ok ({secs:.1} s) {n}"),
            Err(e) => eprintln!("[real-kernel {suite}] {check}: FAILED ({secs:.1} s): {e}"),
        }
        self.rows.push(Row {
            suite: suite.to_owned(),
            check,
            result,
            secs,
        });
        value
    }

    pub(super) fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.result.is_err()).count()
    }

    pub(super) fn print(&self) {
        println!(
            "\n{:<9} {:<34} {:<6} {:>7}  notes",
            "suite", "check", "result", "seconds"
        );
        for r in &self.rows {
            let (res, note) = match &r.result {
                Ok(n) => ("ok", n.as_str()),
                Err(e) => ("FAILED", e.as_str()),
            };
            let note = note.lines().next().unwrap_or("");
            println!("{:<9} {:<34} {:<6} {:>7.1}  {note}", r.suite, r.check, res, r.secs);
        }
    }
}
