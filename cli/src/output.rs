//! Human and machine output. JSON output is the service's own JSON (stable, documented in
//! `docs/cli.md`); tables are for people. Colour only on a terminal and never with `NO_COLOR`.

use std::io::IsTerminal;

use comfy_table::{Table, presets::NOTHING};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub mode: OutputMode,
    pub colour: bool,
}

impl Output {
    /// Table on a terminal, JSON otherwise, unless `--output` says which.
    pub fn detect(requested: Option<OutputMode>) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let mode = requested.unwrap_or(if terminal { OutputMode::Table } else { OutputMode::Json });
        let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { mode, colour }
    }

    pub fn json(&self, value: &Value) {
        println!("{}", serde_json::to_string_pretty(value).expect("JSON serialises"));
    }

    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) {
        let mut table = Table::new();
        table.load_preset(NOTHING);
        table.set_header(headers.iter().map(|h| self.bold(h)).collect::<Vec<_>>());
        for row in rows {
            table.add_row(row);
        }
        println!("{}", table.trim_fmt());
    }

    /// `key  value` lines, aligned.
    pub fn pairs(&self, pairs: &[(&str, String)]) {
        let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in pairs {
            println!("{}  {value}", self.bold(&format!("{key:<width$}")));
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn ok(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A validation report: verdict, then violations grouped by validator with their JSON paths.
    pub fn report(&self, report: &Value) {
        if self.mode == OutputMode::Json {
            self.json(report);
            return;
        }
        let passed = report["passed"].as_bool().unwrap_or(false);
        println!("{}", if passed { self.ok("PASSED") } else { self.bad("FAILED") });
        let validators = report["validators"].as_array().cloned().unwrap_or_default();
        if validators.is_empty() {
            // A service that only sends the flat contract shape.
            self.violations(report["results"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            return;
        }
        for validator in validators {
            let kind = validator["kind"].as_str().unwrap_or("?");
            let violations = validator["violations"].as_array().cloned().unwrap_or_default();
            let verdict = if validator["passed"].as_bool().unwrap_or(false) {
                self.ok("passed")
            } else {
                self.bad("failed")
            };
            println!("\n{} {verdict} ({} violations)", self.bold(kind), violations.len());
            self.violations(&violations);
        }
    }

    fn violations(&self, violations: &[Value]) {
        if violations.is_empty() {
            return;
        }
        let rows = violations
            .iter()
            .map(|v| {
                let severity = v["severity"].as_str().unwrap_or("").to_string();
                let severity = match severity.as_str() {
                    "error" => self.bad(&severity),
                    "warning" => self.warn(&severity),
                    _ => severity,
                };
                vec![
                    severity,
                    v["path"].as_str().unwrap_or("").to_string(),
                    v["constraint"].as_str().unwrap_or("").to_string(),
                    v["message"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        self.table(&["SEVERITY", "PATH", "CONSTRAINT", "MESSAGE"], rows);
    }
}
