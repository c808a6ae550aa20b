//! The listeners under TLS and under hostile clients: the real OTLP gRPC
//! exporter and an HTTPS client talk to a daemon with a self-signed
//! certificate made here; plain text to a TLS port fails cleanly; a client
//! that stalls mid-headers or mid-body is cut without blocking others.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Daemon, FAST, TempDir, n1_request};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for localhost / 127.0.0.1, written as PEM
/// files (key mode 0600).
fn certificate(dir: &TempDir) -> (String, String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let cert_pem = cert.cert.pem();
    let cert_path = dir.0.join("cert.pem");
    let key_path = dir.0.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (
        cert_path.display().to_string(),
        key_path.display().to_string(),
        cert_pem,
    )
}

fn tls_client(cert_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request over TLS; returns the whole response as text.
async fn https(port: u16, cert_pem: &str, request: &[u8]) -> String {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tls_client(cert_pem).connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_tls_on_both_ports_and_plain_text_fails_cleanly() {
    let dir = TempDir::new("tls");
    let (cert, key, cert_pem) = certificate(&dir);
    let mut daemon = Daemon::start(
        &format!("{FAST}tls_cert_path = {cert:?}\ntls_key_path = {key:?}\n"),
        "",
    );

    // HTTPS: health, then an OTLP/protobuf N+1.
    let health = https(
        daemon.http_port,
        &cert_pem,
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with(r#"{"status":"ok"}"#), "{health}");
    let body = n1_request([0x51; 16], "tls-http", 6).encode_to_vec();
    let mut post = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    post.extend_from_slice(&body);
    let answer = https(daemon.http_port, &cert_pem, &post).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // gRPC through the real OTLP exporter, verifying the certificate.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("https://localhost:{}", daemon.grpc_port))
        .with_tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name("tls-grpc")
                .build(),
        )
        .build();
    let handle = tokio::runtime::Handle::current();
    let grpc_trace = tokio::task::spawn_blocking(move || {
        let _rt = handle.enter();
        let tracer = provider.tracer("tls");
        let root = tracer
            .span_builder("GET /orders/{id}")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/orders/{id}"),
            ])
            .start(&tracer);
        let id = root.span_context().trace_id().to_string();
        let cx = opentelemetry::Context::current_with_span(root);
        for i in 0..6 {
            let mut s = tracer
                .span_builder("SELECT")
                .with_kind(SpanKind::Client)
                .with_attributes([
                    KeyValue::new("db.system", "postgresql"),
                    KeyValue::new("db.statement", format!("SELECT * FROM t WHERE id = {i}")),
                ])
                .start_with_context(&tracer, &cx);
            s.end();
        }
        cx.span().end();
        provider.force_flush().expect("flush over TLS");
        provider.shutdown().expect("shutdown");
        id
    })
    .await
    .unwrap();

    // Plain text to the TLS port: refused, counted, nothing else disturbed.
    let mut plain = TcpStream::connect(("127.0.0.1", daemon.http_port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "a plain-text request must not be served on a TLS port"
    );

    // Both traces analyzed; read the findings over HTTPS.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = https(
            daemon.http_port,
            &cert_pem,
            b"GET /api/findings?type=n_plus_one_sql HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        if found.contains(&grpc_trace) && found.contains(&common::hex(&[0x51; 16])) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "findings never appeared: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = https(
        daemon.http_port,
        &cert_pem,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        common::metric_value(
            metrics.split("\r\n\r\n").nth(1).unwrap_or(""),
            "perf_sentinel_connections_refused_total{reason=\"tls_handshake_failed\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_cut_and_does_not_block_others() {
    let mut daemon = Daemon::start(
        &format!("{FAST}http_header_timeout_ms = 500\nhttp_request_timeout_ms = 800\n"),
        "",
    );
    // Half the headers, then silence.
    let mut loris = TcpStream::connect(("127.0.0.1", daemon.http_port))
        .await
        .unwrap();
    loris
        .write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n",
        )
        .await
        .unwrap();
    // Complete headers, then a body that never comes.
    let mut slow_body = TcpStream::connect(("127.0.0.1", daemon.http_port))
        .await
        .unwrap();
    slow_body
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();

    // Others are served meanwhile.
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);

    // The stalled clients are cut: the connection ends within a few seconds.
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), loris.read_to_end(&mut buf)).await;
    assert!(ended.is_ok(), "the half-header connection was never closed");
    let mut answer = Vec::new();
    let ended =
        tokio::time::timeout(Duration::from_secs(10), slow_body.read_to_end(&mut answer)).await;
    assert!(
        ended.is_ok(),
        "the stalled-body connection was never closed"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);
    assert!(daemon.terminate().success());
}
