//! The client side of the query and ack API, for the `perf-sentinel ack`
//! and `perf-sentinel query` subcommands: runbooks and terminals talk to a
//! running daemon without hand-written curl.

pub mod render;

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

/// The variable holding the API key for ack writes and lists.
pub const API_KEY_ENV: &str = "PERF_SENTINEL_DAEMON_API_KEY";

/// Why a command against the daemon failed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the daemon at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the daemon answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse { url: String, detail: String },
}

impl ClientError {
    /// 1: the daemon refused; 2: bad usage or local input; 3: unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused { .. } | ClientError::BadResponse { .. } => 1,
            ClientError::Usage(_) => 2,
            ClientError::Unreachable { .. } => 3,
        }
    }
}

/// A connection to one daemon's HTTP port.
pub struct DaemonClient {
    base: Url,
    http: reqwest::Client,
    api_key: Option<String>,
}

/// How to reach the daemon.
pub struct ClientOptions<'a> {
    /// `http://host:4318` or `https://...`.
    pub daemon: &'a str,
    /// A file holding the API key (first line), else `$PERF_SENTINEL_DAEMON_API_KEY`.
    pub api_key_file: Option<&'a Path>,
    /// Extra PEM root certificates (a self-signed daemon certificate).
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
}

impl DaemonClient {
    pub fn new(opts: &ClientOptions<'_>) -> Result<Self, ClientError> {
        let base = Url::parse(opts.daemon)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "--daemon must be an http:// or https:// URL, got {:?}",
                    opts.daemon
                ))
            })?;
        let api_key = match opts.api_key_file {
            Some(path) => Some(read_key_file(path)?),
            None => std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty()),
        };
        // reqwest is built without a bundled provider: rustls uses ring,
        // like the daemon. Installing twice is harmless (it keeps the first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ClientError::Usage(format!("cannot read --ca-file {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                ClientError::Usage(format!("--ca-file {} is not PEM: {e}", path.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            api_key,
        })
    }

    /// `base` + path segments (each percent-encoded) + query pairs.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request; `Ok(None)` for an empty success body.
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Option<Value>, ClientError> {
        let url = self.url(segments, query);
        let mut req = self.http.request(method, url.clone());
        if let Some(key) = &self.api_key {
            req = req.header("x-api-key", key);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            detail: crate::net::error_chain(&e),
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ClientError::BadResponse {
            url: url.to_string(),
            detail: crate::net::error_chain(&e),
        })?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(500).collect());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message: render::terminal_safe(&message),
            });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::BadResponse {
                url: url.to_string(),
                detail: format!("not JSON: {e}"),
            })
    }
}

fn read_key_file(path: &Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ClientError::Usage(format!(
            "cannot read --api-key-file {}: {e}",
            path.display()
        ))
    })?;
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(ClientError::Usage(format!(
            "--api-key-file {} is empty",
            path.display()
        )));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> DaemonClient {
        DaemonClient::new(&ClientOptions {
            daemon: base,
            api_key_file: None,
            ca_file: None,
            timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[test]
    fn path_segments_are_encoded_and_queries_appended() {
        let c = client("http://127.0.0.1:4318/");
        let url = c.url(
            &[
                "api",
                "findings",
                "n_plus_one_sql:api:GET__orders_{id}:ab",
                "ack",
            ],
            &[("service", "a b&c".to_owned())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:4318/api/findings/n_plus_one_sql:api:GET__orders_%7Bid%7D:ab/ack?service=a+b%26c"
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        for bad in ["127.0.0.1:4318", "ftp://x", "http://"] {
            let err = DaemonClient::new(&ClientOptions {
                daemon: bad,
                api_key_file: None,
                ca_file: None,
                timeout: Duration::from_secs(1),
            })
            .err()
            .unwrap();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }
}
