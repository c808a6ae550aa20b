//! Loading the TLS identity: a PEM certificate chain and private key, read
//! once at startup with rustls (ring provider). A key file readable by group
//! or others is loaded but warned about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert_path {path}: {detail}")]
    Cert { path: PathBuf, detail: String },
    #[error("tls_key_path {path}: {detail}")]
    Key { path: PathBuf, detail: String },
    #[error("TLS identity from {cert} and {key} refused: {detail}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// A server configuration for `cert` and `key`, speaking HTTP/2 and
/// HTTP/1.1 (ALPN) so gRPC and OTLP/HTTP clients both negotiate.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Cert {
            path: cert.to_owned(),
            detail: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert {
            path: cert.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_owned(),
            detail: "no PEM certificate in the file".into(),
        });
    }
    warn_if_readable_by_others(key);
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        detail: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| TlsError::Config {
            cert: cert.to_owned(),
            key: key.to_owned(),
            detail: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn warn_if_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %key.display(),
                mode = format!("{:o}", mode & 0o777),
                "the TLS private key is readable by group or others; chmod 600 it"
            );
        }
    }
}
