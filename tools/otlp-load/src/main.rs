//! `otlp-load`: an OTLP load generator for perf-sentinel (or any OTLP
//! receiver). It sends a weighted mix of trace shapes over gRPC or
//! HTTP/protobuf from several concurrent workers, as fast as it can or at a
//! fixed span rate, for a bounded time, and reports accepted spans/s,
//! export latency percentiles and refusals by status.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};

use otlp_load::patterns::Mix;
use otlp_load::probe;
use otlp_load::report::{Report, RunInfo, Tally};
use otlp_load::send::{Outcome, Transport};
use otlp_load::template::{self, Shape, Template};

/// Sends OTLP traces and measures how the receiver keeps up.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// `grpc` (port 4317) or `http` (protobuf to `/v1/traces`, port 4318).
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    protocol: Protocol,
    /// Base URL of the receiver, e.g. http://127.0.0.1:4317.
    #[arg(long)]
    endpoint: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Traces in each request.
    #[arg(long, default_value_t = 50)]
    traces_per_request: usize,
    /// Spans in each trace (chatty and fan-out traces take more).
    #[arg(long, default_value_t = 9)]
    spans_per_trace: usize,
    /// Weighted patterns: n1, redundant, slow, chatty, fanout, clean.
    #[arg(
        long,
        default_value = "n1=1,redundant=1,slow=1,chatty=1,fanout=1,clean=5"
    )]
    mix: String,
    /// Spans per second to send in total; 0 sends as fast as replies come.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to send, in seconds (at most one hour).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The daemon's HTTP API base (e.g. http://127.0.0.1:4318): once a
    /// second, send an N+1 trace whose root ends now and time how long its
    /// finding takes to be served by `/api/findings/{trace_id}`.
    #[arg(long)]
    probe: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Grpc,
    Http,
}

/// Distinct encoded requests cycled through.
const TEMPLATES: usize = 64;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("otlp-load: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<Report, String> {
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        return Err(format!(
            "--duration must be above 0 and at most 3600 s, got {}",
            args.duration
        ));
    }
    if args.concurrency == 0 || args.concurrency > 4096 {
        return Err("--concurrency must be between 1 and 4096".into());
    }
    if args.traces_per_request == 0 || args.spans_per_trace == 0 {
        return Err("--traces-per-request and --spans-per-trace must be at least 1".into());
    }
    let mix = Mix::parse(&args.mix)?;
    let shape = Shape {
        traces_per_request: args.traces_per_request,
        spans_per_trace: args.spans_per_trace,
        mix,
    };
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let templates = Arc::new(template::build(&shape, TEMPLATES, now_ns));
    let spans_per_request =
        templates.iter().map(|t| t.spans).sum::<usize>() as f64 / templates.len() as f64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let duration = Duration::from_secs_f64(args.duration);
    // Each worker's share of the rate, as a pause between its requests.
    let pause = (args.rate > 0).then(|| {
        let per_worker = args.rate as f64 / args.concurrency as f64;
        Duration::from_secs_f64(spans_per_request / per_worker)
    });
    let (tally, elapsed, probed) = runtime.block_on(async {
        let transport = match args.protocol {
            Protocol::Grpc => Transport::grpc(&args.endpoint).await?,
            Protocol::Http => Transport::http(&args.endpoint)?,
        };
        let start = Instant::now();
        let deadline = tokio::time::Instant::now() + duration;
        let workers: Vec<_> = (0..args.concurrency)
            .map(|w| {
                let transport = transport.clone();
                let templates = templates.clone();
                tokio::spawn(worker(w as u32, transport, templates, deadline, pause))
            })
            .collect();
        let probe = args.probe.clone().map(|api| {
            tokio::spawn(probe::run(
                transport.clone(),
                api,
                Duration::from_secs(1),
                deadline,
            ))
        });
        let mut total = Tally::default();
        for w in workers {
            let t = w.await.map_err(|e| format!("a worker failed: {e}"))?;
            total.merge(&t);
        }
        let elapsed = start.elapsed();
        let probed = match probe {
            Some(p) => Some(p.await.map_err(|e| format!("the probe failed: {e}"))??),
            None => None,
        };
        Ok::<_, String>((total, elapsed, probed))
    })?;
    let info = RunInfo {
        protocol: format!("{:?}", args.protocol).to_lowercase(),
        endpoint: args.endpoint.clone(),
        concurrency: args.concurrency,
        traces_per_request: args.traces_per_request,
        spans_per_request,
        rate: (args.rate > 0).then_some(args.rate),
    };
    let mut report = Report::new(info, &tally, elapsed);
    report.finding_latency = probed;
    Ok(report)
}

async fn worker(
    id: u32,
    mut transport: Transport,
    templates: Arc<Vec<Template>>,
    deadline: tokio::time::Instant,
    pause: Option<Duration>,
) -> Tally {
    let mut tally = Tally::default();
    let mut ticker = pause.map(|p| {
        let mut t = tokio::time::interval(p);
        // Behind schedule, send the missed requests at once: the rate is a
        // target for the receiver, not a ceiling on the generator.
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut seq = 0u64;
    loop {
        if let Some(t) = &mut ticker
            && tokio::time::timeout_at(deadline, t.tick()).await.is_err()
        {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let template = &templates[(seq as usize + id as usize) % templates.len()];
        let body = template.stamp(id, seq);
        seq += 1;
        let sent = Instant::now();
        let outcome = transport.export(body).await;
        let micros = sent.elapsed().as_micros().clamp(1, 60_000_000) as u64;
        match outcome {
            Outcome::Ok { rejected_spans } => {
                let _ = tally.latency_us.record(micros);
                tally.ok_requests += 1;
                tally.accepted_spans +=
                    template.spans as u64 - rejected_spans.min(template.spans as u64);
                tally.rejected_spans += rejected_spans;
            }
            Outcome::Refused(why) => {
                *tally.errors.entry(why).or_default() += 1;
                // Give a refusing receiver a moment instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    tally
}
