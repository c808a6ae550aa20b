//! `perf-sentinel analyze`: reads the configuration as the daemon does,
//! runs the batch analysis, prints the report and turns the gate into an
//! exit code: 0 passed (or no `--ci`), 1 gate failed under `--ci`, 2 the
//! input, the configuration or the acknowledgment baseline is unusable.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use perf_sentinel::batch::{self, AnalyzeError, render};
use perf_sentinel::config::ConfigError;
use perf_sentinel::daemon;

use crate::{AnalyzeArgs, ReportFormat};

/// The gate failed (with `--ci`).
const EXIT_GATE: u8 = 1;
/// Unusable input, configuration or baseline; also usage errors (clap).
const EXIT_UNUSABLE: u8 = 2;

pub fn analyze(args: &AnalyzeArgs, config: Option<&Path>, environment: Option<String>) -> ExitCode {
    match run(args, config, environment) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("perf-sentinel analyze: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn run(
    args: &AnalyzeArgs,
    config: Option<&Path>,
    environment: Option<String>,
) -> Result<ExitCode, AnalyzeError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let overrides = daemon::Overrides {
        environment,
        ..daemon::Overrides::default()
    };
    let loaded = daemon::load_detectors(config, &cwd, overrides)?;
    if !loaded.problems.is_empty() {
        return Err(ConfigError::Invalid(loaded.problems).into());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let outcome = batch::run(
        &loaded.config,
        &loaded.specs,
        &batch::Options {
            input: args.input.clone(),
            max_input: args.max_input_size,
            acknowledgments: !args.no_acknowledgments,
            threads,
        },
        &cwd,
    )?;
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let options = render::Options {
        colour: to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        show_acknowledged: args.show_acknowledged,
        baseline: outcome.baseline,
        input_uri: input_uri(&args.input, &cwd),
    };
    let kind = match args.format {
        ReportFormat::Text => render::Kind::Text,
        ReportFormat::Json => render::Kind::Json,
        ReportFormat::Sarif => render::Kind::Sarif,
    };
    let text = render::render(&outcome.report, kind, &options);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| {
            AnalyzeError::Output(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(AnalyzeError::Output)?;
        }
    }
    if args.ci && !outcome.report.gate.passed {
        return Ok(ExitCode::from(EXIT_GATE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The trace file as SARIF names it: relative to the working directory
/// (the checkout in CI) when it is inside it; `stdin` for standard input.
fn input_uri(input: &Path, cwd: &Path) -> String {
    if input.as_os_str() == "-" {
        return "stdin".to_owned();
    }
    input
        .strip_prefix(cwd)
        .unwrap_or(input)
        .to_string_lossy()
        .into_owned()
}
