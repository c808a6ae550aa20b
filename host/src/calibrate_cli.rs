//! `perf-sentinel calibrate`: derives per-service factors on the proxy
//! energy from a trace file and a measured power or energy CSV, prints what
//! it measured on standard error and writes the calibration TOML.

use std::io::Write;
use std::process::ExitCode;

use perf_sentinel::green::calibration::derive::{self, CalibrateError, Derived};
use perf_sentinel::green::calibration::measured::Measured;

use crate::CalibrateArgs;

/// Unusable input (the same code `analyze` uses).
const EXIT_UNUSABLE: u8 = 2;

pub fn calibrate(args: &CalibrateArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf-sentinel calibrate: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn run(args: &CalibrateArgs) -> Result<(), CalibrateError> {
    // The CSV first: it is small, and a mistake in it should not wait for
    // a large trace file to be read.
    let measured = Measured::load(&args.measured_energy)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let usage = derive::usage(&args.traces, args.max_input_size, threads)?;
    let derived = derive::derive(&usage, &measured)?;
    eprint!("{}", summary(&derived));
    let header = [
        "Written by `perf-sentinel calibrate`: per-service factors on the proxy energy per operation."
            .to_owned(),
        format!(
            "Traces: {} ({} spans); measured: {}.",
            args.traces.display(),
            usage.spans,
            args.measured_energy.display()
        ),
    ];
    let text = derived.calibration.to_toml(&header);
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text).map_err(|e| (path.display().to_string(), e)),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| ("standard output".to_owned(), e))
        }
    };
    written.map_err(|(to, e)| CalibrateError::Unusable(format!("cannot write {to}: {e}")))
}

/// One line per service, then the notes; names are printed through
/// `escape_debug` so a hostile service name cannot drive the terminal.
fn summary(d: &Derived) -> String {
    let mut out = String::from("service\tI/O ops\tproxy kWh\tmeasured kWh\tfactor\n");
    for l in &d.lines {
        let factor = l.factor.map_or_else(|| "-".to_owned(), |f| f.to_string());
        out.push_str(&format!(
            "{}\t{}\t{:.6e}\t{:.6e}\t{factor}\n",
            l.service.escape_debug(),
            l.ops,
            l.proxy_kwh,
            l.measured_kwh
        ));
    }
    for n in &d.notes {
        out.push_str(&format!("note: {}\n", n.escape_debug()));
    }
    out
}
