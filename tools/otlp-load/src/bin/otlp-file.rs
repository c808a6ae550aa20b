//! `otlp-file`: writes a captured-trace file (OTLP JSON) of the load
//! generator's pattern mix, for `perf-sentinel analyze` and its benchmarks.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use otlp_load::capture::{self, Layout, Plan};
use otlp_load::patterns::Mix;

/// Writes OTLP JSON trace files of a given size, reproducibly.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Spans to write (whole traces: a few more may be written).
    #[arg(long)]
    spans: usize,
    /// Where to write; `-` for stdout.
    #[arg(long)]
    out: PathBuf,
    /// `ndjson`: one request per line, as the Collector's file exporter
    /// writes; `object`: one request holding everything.
    #[arg(long, value_enum, default_value_t = LayoutArg::Ndjson)]
    layout: LayoutArg,
    /// Spans in each trace (chatty and fan-out traces take more).
    #[arg(long, default_value_t = 9)]
    spans_per_trace: usize,
    /// Traces per batch (per line).
    #[arg(long, default_value_t = 50)]
    traces_per_batch: usize,
    /// Weighted patterns: n1, redundant, slow, chatty, fanout, clean.
    #[arg(
        long,
        default_value = "n1=1,redundant=1,slow=1,chatty=1,fanout=1,clean=5"
    )]
    mix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    Ndjson,
    Object,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otlp-file: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.spans_per_trace == 0 || args.traces_per_batch == 0 {
        return Err("--spans-per-trace and --traces-per-batch must be at least 1".into());
    }
    let plan = Plan {
        spans: args.spans,
        spans_per_trace: args.spans_per_trace,
        traces_per_batch: args.traces_per_batch,
        mix: Mix::parse(&args.mix)?,
        layout: match args.layout {
            LayoutArg::Ndjson => Layout::Ndjson,
            LayoutArg::Object => Layout::Object,
        },
    };
    let written = if args.out.as_os_str() == "-" {
        capture::write(&plan, &mut BufWriter::new(std::io::stdout().lock()))
    } else {
        let file = std::fs::File::create(&args.out)
            .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
        capture::write(&plan, &mut BufWriter::with_capacity(1 << 20, file))
    }
    .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    eprintln!(
        "otlp-file: {} spans in {} traces, {} batches",
        written.spans, written.traces, written.batches
    );
    Ok(())
}
