//! A thousand idle connections (half on each port) and slow-loris bodies
//! (a byte every 100 ms): the daemon keeps serving others on both ports
//! while they are held, cuts the trickling bodies with 408 at the request
//! deadline, and closes the idle connections of both ports at the header
//! deadline (on the gRPC port, whose server has no deadline of its own
//! before the HTTP/2 preface, as a deadline for the first byte).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use prost::Message as _;

use crate::common::{Daemon, FAST, hex, n1_request, raw_grpc};

const IDLE: usize = 1000;
const LORIS: usize = 20;

/// Raises this process's open-file limit (the daemon inherits it): 1,000
/// held sockets plus the daemon's own need more than a default 1,024.
fn raise_nofile() {
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            "--nofile=8192:8192",
        ])
        .status()
        .expect("prlimit (util-linux) is needed to raise RLIMIT_NOFILE");
    assert!(status.success(), "cannot raise RLIMIT_NOFILE to 8192");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_slow_loris_bodies_do_not_starve_others() {
    raise_nofile();
    let mut daemon = Daemon::start(
        &format!(
            "{FAST}http_header_timeout_ms = 3000\nhttp_request_timeout_ms = 3000\nmax_connections = 2048\n"
        ),
        "",
    );
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let port = if i % 2 == 0 {
            daemon.http_port
        } else {
            daemon.grpc_port
        };
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let mut loris = Vec::with_capacity(LORIS);
    for _ in 0..LORIS {
        let mut s = TcpStream::connect(("127.0.0.1", daemon.http_port))
            .await
            .unwrap();
        s.write_all(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n",
        )
        .await
        .unwrap();
        loris.push(s);
    }
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        let mut answers = vec![Vec::new(); LORIS];
        let mut open = vec![true; LORIS];
        // A byte each 100 ms on every body, for at most 20 s; each ends
        // when the daemon answers and closes.
        while open.iter().any(|o| *o) && started.elapsed() < Duration::from_secs(20) {
            for (i, s) in loris.iter_mut().enumerate() {
                if !open[i] {
                    continue;
                }
                if s.write_all(b"x").await.is_err() {
                    open[i] = false;
                }
                let mut buf = [0u8; 512];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await
                {
                    answers[i].extend_from_slice(&buf[..n]);
                    if n == 0 {
                        open[i] = false;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (answers, open, started.elapsed())
    });

    // Meanwhile others are served on both ports.
    for n in 0..5u8 {
        assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);
        let id = [0xc0, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            daemon
                .post_otlp(&n1_request(id, "http-client", 6))
                .await
                .status(),
            200
        );
        let grpc_id = [0xc1, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut grpc = raw_grpc::grpc_client(&daemon).await;
        raw_grpc::export(
            &mut grpc,
            n1_request(grpc_id, "grpc-client", 6).encode_to_vec(),
        )
        .await
        .expect("gRPC export while 1,000 connections idle");
        for id in [id, grpc_id] {
            let id = hex(&id);
            daemon
                .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
                    (!daemon.trace_findings(&id).await.is_empty()).then_some(())
                })
                .await;
        }
    }

    // The trickling bodies are cut at the request deadline with 408.
    let (answers, open, took) = trickle.await.unwrap();
    assert!(
        open.iter().all(|o| !o),
        "slow-loris bodies still open after {took:?}"
    );
    for a in &answers {
        let a = String::from_utf8_lossy(a);
        assert!(a.starts_with("HTTP/1.1 408"), "{a:?}");
    }

    // The idle connections of both ports are closed by the daemon (EOF or
    // reset) at the header deadline: they no longer hold connection slots.
    for (i, mut s) in idle.into_iter().enumerate() {
        // The gRPC port's server speaks first (its HTTP/2 settings): read
        // to the end, which must come.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "idle connection {i} still open"
        );
    }
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);
    assert!(daemon.terminate().success());
}
