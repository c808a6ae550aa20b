//! The scrapers' HTTP client: reqwest over rustls (ring), redirects off, a
//! whole-request timeout, and a body cap enforced while reading. Errors
//! never carry the URL (paths and queries may hold tokens); logs use
//! [`redact`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Why a fetch failed; [`FetchError::reason`] is the metric label.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answered a redirect (HTTP {0}); redirects are not followed")]
    Redirect(u16),
    #[error("body larger than the {0}-byte cap")]
    TooLarge(usize),
    #[error("request failed: {0}")]
    Other(String),
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::Status(_) => "http_status",
            FetchError::Redirect(_) => "redirect",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Other(_) => "request",
        }
    }
}

/// `scheme://host[:port]` of `url`: what logs and the API show of an
/// endpoint.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// One backend's client.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: usize,
}

impl Fetcher {
    /// `headers` go on every request (credentials: marked sensitive).
    pub fn new(
        timeout: Duration,
        max_body: usize,
        headers: Vec<(HeaderName, String)>,
    ) -> Result<Self, FetchError> {
        // reqwest is built without a bundled provider; installing ring
        // twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                FetchError::Other(format!("header {name} holds invalid characters"))
            })?;
            v.set_sensitive(true);
            map.insert(name, v);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .default_headers(map)
            .build()
            .map_err(|e| FetchError::Other(e.without_url().to_string()))?;
        Ok(Self {
            client,
            timeout,
            max_body,
        })
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_connect() {
            FetchError::Connect(crate::net::error_chain(&e.without_url()))
        } else {
            FetchError::Other(crate::net::error_chain(&e.without_url()))
        }
    }

    /// GETs `url` and reads at most the cap.
    pub async fn get(&self, url: &str, accept: &str) -> Result<Bytes, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(FetchError::TooLarge(self.max_body));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(FetchError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_scheme_host_and_port_only() {
        assert_eq!(
            redact("https://api.electricitymap.org/v3/carbon-intensity/latest?zone=FR&token=x"),
            "https://api.electricitymap.org"
        );
        assert_eq!(
            redact("http://10.0.0.1:9102/metrics"),
            "http://10.0.0.1:9102"
        );
        assert_eq!(redact("::"), "<invalid url>");
    }
}
