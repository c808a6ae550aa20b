//! The dashboard at `/ui/`: served from the binary with its security and
//! cache headers, absent when turned off, and driven in a real browser
//! (Debian's Chromium through playwright-core, `tests/browser/`) against
//! the real daemon fed with OTLP traces.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, FAST, hex, kv, n1_request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

const KEY_VAR: &str = "PERF_SENTINEL_ACK_API_KEY";
const KEY: &str = "dashboard-test-key-7f3a9c";
/// Planted in a service name and in SQL statements: must show as text.
const XSS: &str = "<script>alert(1)</script>";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_from_the_binary_with_strict_headers() {
    let daemon = Daemon::start(FAST, "");
    let client = no_redirects();
    let mut etags = Vec::new();
    for (path, kind, marker) in [
        (
            "/ui/",
            "text/html; charset=utf-8",
            "<title>perf-sentinel</title>",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "textContent",
        ),
        (
            "/ui/style.css",
            "text/css; charset=utf-8",
            "prefers-color-scheme",
        ),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = client.get(daemon.http(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], kind, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        let etag = h["etag"].clone();
        assert!(r.text().await.unwrap().contains(marker), "{path}");
        // The browser's copy is current: 304 with no body.
        let again = client
            .get(daemon.http(path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        etags.push(etag);
    }
    etags.dedup();
    assert_eq!(etags.len(), 4, "each file has its own validator");

    let bare = client.get(daemon.http("/ui")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/ui/");
    let unknown = client.get(daemon.http("/ui/nope.js")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_off_with_ui_enabled_false_or_without_the_api() {
    let off = Daemon::start(&format!("{FAST}ui_enabled = false\n"), "");
    for path in ["/ui/", "/ui/app.js", "/ui"] {
        let status = no_redirects()
            .get(off.http(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path} with ui_enabled = false");
    }
    // The API stays: only the page is gone.
    let api = reqwest::get(off.http("/api/status"))
        .await
        .unwrap()
        .status();
    assert_eq!(api, 200);
    let config: serde_json::Value = serde_json::from_str(&off.get("/api/config").await).unwrap();
    assert_eq!(config["daemon"]["ui_enabled"], false);

    // The page needs the API: without it there is no page either.
    let no_api = Daemon::start(&format!("{FAST}api_enabled = false\n"), "");
    let status = reqwest::get(no_api.http("/ui/")).await.unwrap().status();
    assert_eq!(status, 404, "/ui/ with api_enabled = false");
}

/// The order-svc N+1, with a source location on its repeated SELECTs.
fn order_trace(trace_id: [u8; 16], n: u64) -> ExportTraceServiceRequest {
    let mut req = n1_request(trace_id, "order-svc", n);
    for span in &mut req.resource_spans[0].scope_spans[0].spans[1..] {
        span.attributes.extend([
            kv("code.function", "load_items"),
            kv("code.filepath", "src/orders.rs"),
            kv("code.lineno", "42"),
        ]);
    }
    req
}

/// An N+1 whose service name and statements carry markup.
fn hostile_trace(trace_id: [u8; 16]) -> ExportTraceServiceRequest {
    let mut req = n1_request(trace_id, &format!("shop{XSS}"), 6);
    for (i, span) in req.resource_spans[0].scope_spans[0].spans[1..]
        .iter_mut()
        .enumerate()
    {
        span.attributes.retain(|a| a.key != "db.statement");
        span.attributes.push(kv(
            "db.statement",
            &format!("SELECT * FROM items WHERE note = '{XSS}' AND order_id = {i}"),
        ));
    }
    req
}

fn tool(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the suite with ./scripts/test.sh, which installs Chromium, \
             Node.js and playwright-core (scripts/install-test-tools.sh)"
        )
    });
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{var} points to {}, which does not exist",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let node = tool("PERF_SENTINEL_NODE");
    let chromium = tool("PERF_SENTINEL_CHROMIUM");
    let browser_dir = tool("PERF_SENTINEL_BROWSER_TESTS");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed under {}: run scripts/install-test-tools.sh",
        browser_dir.display()
    );

    let daemon = Daemon::start_with_env(FAST, "", &[(KEY_VAR, KEY)]);
    let n = 8;
    let traces = [
        order_trace([0x11; 16], n),
        n1_request([0x22; 16], "billing-svc", 6),
        hostile_trace([0x33; 16]),
    ];
    for t in &traces {
        assert_eq!(daemon.post_otlp(t).await.status(), 200);
    }
    daemon
        .wait_for(Duration::from_secs(20), "three N+1 findings", || async {
            let found = daemon.findings("type=n_plus_one_sql").await;
            (found.len() == 3).then_some(())
        })
        .await;
    // The explain view needs the analyzed trace to be retained.
    for id in [[0x11; 16], [0x33; 16]] {
        let r = reqwest::get(daemon.http(&format!("/api/explain/{}", hex(&id))))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/img");
    let started = Instant::now();
    let out = Command::new(node)
        .arg(browser_dir.join("dashboard.mjs"))
        .current_dir(&browser_dir)
        .env("DAEMON_URL", daemon.http(""))
        .env("API_KEY", KEY)
        .env("CHROMIUM", chromium)
        .env("SHOT_DIR", &shots)
        .env("EXPECT_N1", n.to_string())
        .env("XSS", XSS)
        .output()
        .expect("cannot run node");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser checks failed ({}, {:.1} s):\n{log}\ndaemon stderr:\n{}",
        out.status,
        started.elapsed().as_secs_f64(),
        daemon.stderr_text()
    );
    eprintln!("{log}");
    for shot in [
        "dashboard-findings-light.png",
        "dashboard-findings-dark.png",
        "dashboard-trace-light.png",
        "dashboard-trace-dark.png",
        "dashboard-phone-dark.png",
    ] {
        let len = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{shot} missing or empty ({len} bytes)");
    }
}
