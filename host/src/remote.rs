//! `perf-sentinel ack` and `perf-sentinel query`: one request to a running
//! daemon, its answer printed as text or JSON, and an exit code a script
//! can branch on (0 done, 1 refused by the daemon, 2 usage, 3 unreachable).

use std::process::ExitCode;
use std::time::Duration;

use perf_sentinel::client::{ClientError, ClientOptions, DaemonClient, render};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{AckCommand, Format, QueryCommand, Remote};

pub fn ack(cmd: AckCommand) -> ExitCode {
    match cmd {
        AckCommand::Create {
            signature,
            by,
            reason,
            expires_at,
            remote,
        } => {
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_default();
            let mut body = json!({ "by": by });
            if let Some(r) = reason {
                body["reason"] = Value::String(r);
            }
            if let Some(e) = expires_at {
                body["expires_at"] = Value::String(e);
            }
            let path = ["api", "findings", signature.as_str(), "ack"];
            run(
                &remote,
                Method::POST,
                &path,
                &[],
                Some(body),
                render::ack_created,
            )
        }
        AckCommand::Revoke { signature, remote } => {
            let path = ["api", "findings", signature.as_str(), "ack"];
            let shown = format!("revoked {}\n", render::terminal_safe(&signature));
            run(&remote, Method::DELETE, &path, &[], None, move |_| {
                shown.clone()
            })
        }
        AckCommand::List { remote } => run(
            &remote,
            Method::GET,
            &["api", "acks"],
            &[],
            None,
            render::acks,
        ),
    }
}

pub fn query(cmd: QueryCommand) -> ExitCode {
    match cmd {
        QueryCommand::Findings {
            service,
            kind,
            severity,
            limit,
            include_acked,
            remote,
        } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [("service", service), ("type", kind), ("severity", severity)] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if let Some(n) = limit {
                q.push(("limit", n.to_string()));
            }
            if include_acked {
                q.push(("include_acked", "true".into()));
            }
            run(
                &remote,
                Method::GET,
                &["api", "findings"],
                &q,
                None,
                render::findings,
            )
        }
        QueryCommand::Status { remote } => run(
            &remote,
            Method::GET,
            &["api", "status"],
            &[],
            None,
            render::status,
        ),
        QueryCommand::Correlations { remote } => run(
            &remote,
            Method::GET,
            &["api", "correlations"],
            &[],
            None,
            render::correlations,
        ),
        QueryCommand::Explain { trace_id, remote } => run(
            &remote,
            Method::GET,
            &["api", "explain", trace_id.as_str()],
            &[],
            None,
            render::explain,
        ),
    }
}

fn run(
    remote: &Remote,
    method: Method,
    path: &[&str],
    query: &[(&str, String)],
    body: Option<Value>,
    text: impl Fn(&Value) -> String,
) -> ExitCode {
    let result = (|| {
        let client = DaemonClient::new(&ClientOptions {
            daemon: &remote.daemon,
            api_key_file: remote.api_key_file.as_deref(),
            ca_file: remote.ca_file.as_deref(),
            timeout: Duration::from_secs(remote.timeout.max(1)),
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot start the runtime: {e}")))?;
        runtime.block_on(client.call(method, path, query, body))
    })();
    match result {
        Ok(answer) => {
            let answer = answer.unwrap_or(Value::Null);
            let out = match remote.format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                ),
                Format::Text => text(&answer),
            };
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perf-sentinel: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
