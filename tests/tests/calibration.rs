//! `perf-sentinel calibrate` against the real binary: factors derived from
//! a trace file and a measured-power CSV, then applied by the daemon that
//! reads them through `[green] calibration_file`; bad inputs refused with
//! the file and the reason.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Daemon, FAST, TempDir, binary, n1_request};
use serde_json::{Value, json};

/// 1,700,000,000 s: where every span of the trace file lies.
const T0_NS: u64 = 1_700_000_000_000_000_000;

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// Spans of `service` under one root: `n` client calls running `statement`.
fn resource(service: &str, trace: &str, statement: &str, n: u64) -> Value {
    let mut spans = vec![json!({
        "traceId": trace, "spanId": "00000000000000f1", "name": "GET /", "kind": 2,
        "startTimeUnixNano": T0_NS.to_string(),
        "endTimeUnixNano": (T0_NS + 100_000_000).to_string(),
    })];
    for i in 0..n {
        let start = T0_NS + 1_000_000 * (i + 1);
        spans.push(json!({
            "traceId": trace, "spanId": format!("{:016x}", 0x100 + i),
            "parentSpanId": "00000000000000f1", "name": "q", "kind": 3,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": (start + 500_000).to_string(),
            "attributes": [attr("db.system", "postgresql"), attr("db.statement", statement)]
        }));
    }
    json!({
        "resource": {"attributes": [attr("service.name", service)]},
        "scopeSpans": [{"spans": spans}]
    })
}

/// Two services over 0.1 s: six SELECTs of `order-svc` (proxy 6 x 0.5 x
/// 1e-7 = 3e-7 kWh) and two INSERTs of `pay-svc` (2 x 1.5 x 1e-7 = 3e-7).
fn trace_file(dir: &Path) -> std::path::PathBuf {
    let doc = json!({"resourceSpans": [
        resource("order-svc", "0badc0de0badc0de0badc0de0badc0de", "SELECT * FROM items WHERE id = 1", 6),
        resource("pay-svc", "1badc0de0badc0de0badc0de0badc0de", "INSERT INTO pay VALUES (1)", 2),
    ]});
    let path = dir.join("traces.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cannot run perf-sentinel")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibrate_derives_factors_that_the_daemon_then_applies() {
    let dir = TempDir::new("calibrate");
    let traces = trace_file(&dir.0);
    // Constant power over the traces' 0.1 s: 43.2 W is 4.32 J, 1.2e-6 kWh,
    // four times order-svc's proxy; 21.6 W is twice pay-svc's.
    let csv = dir.0.join("power.csv");
    std::fs::write(
        &csv,
        "timestamp,watts,service\n\
         1699999999,43.2,order-svc\n1700000001,43.2,order-svc\n\
         2023-11-14T22:13:19Z,21.6,pay-svc\n2023-11-14T22:13:21Z,21.6,pay-svc\n\
         1700000000.05,500,idle-svc\n",
    )
    .unwrap();
    let out = run(
        &dir.0,
        &[
            "calibrate",
            "--traces",
            traces.to_str().unwrap(),
            "--measured-energy",
            "power.csv",
            "-o",
            "cal.toml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(summary.contains("order-svc\t6\t"), "{summary}");
    assert!(
        summary.contains("note: idle-svc: measured, but it has no outbound I/O"),
        "{summary}"
    );
    let text = std::fs::read_to_string(dir.0.join("cal.toml")).unwrap();
    let cal: toml::Table = text.parse().unwrap();
    assert_eq!(cal["version"].as_integer(), Some(1), "{text}");
    assert_eq!(cal["factors"]["order-svc"].as_float(), Some(4.0), "{text}");
    assert_eq!(cal["factors"]["pay-svc"].as_float(), Some(2.0), "{text}");
    assert!(cal["factors"].get("idle-svc").is_none(), "{text}");

    // The daemon multiplies order-svc's proxy energy by 4.
    let cal_path = dir.0.join("cal.toml");
    let daemon = Daemon::start(
        FAST,
        &format!(
            "[green]\ndefault_region = \"eu-west-3\"\ncalibration_file = {:?}\n",
            cal_path.to_str().unwrap()
        ),
    );
    let id = [0x61; 16];
    assert_eq!(
        daemon
            .post_otlp(&n1_request(id, "order-svc", 6))
            .await
            .status(),
        200
    );
    let n1 = daemon.wait_trace_finding(&id, "n_plus_one_sql").await;
    // 5 avoidable SELECTs x 1e-7 kWh x 0.5 x PUE 1.135, times the factor.
    let g = &n1["green_impact"];
    assert_eq!(g["energy_source"], "calibrated_proxy", "{g}");
    let kwh = g["estimated_energy_kwh"].as_f64().unwrap();
    assert!((kwh - 4.0 * 2.8375e-7).abs() < 1e-18, "{g}");
    let energy: Value = serde_json::from_str(&daemon.get("/api/energy").await).unwrap();
    let c = &energy["model"]["calibration"];
    assert_eq!(c["factors"]["order-svc"], 4.0, "{energy}");
    assert_eq!(c["file"], cal_path.to_str().unwrap(), "{energy}");
}

#[test]
fn unusable_measurements_and_calibration_files_are_refused_clearly() {
    let dir = TempDir::new("calibrate-bad");
    let traces = trace_file(&dir.0);
    let traces = traces.to_str().unwrap();
    let calibrate = |csv: &str| {
        std::fs::write(dir.0.join("m.csv"), csv).unwrap();
        run(
            &dir.0,
            &[
                "calibrate",
                "--traces",
                traces,
                "--measured-energy",
                "m.csv",
            ],
        )
    };
    for (csv, needle) in [
        (
            "time,watts\n1,2\n",
            "m.csv: the header has no `timestamp` column",
        ),
        (
            "timestamp,watts\n1,2\nnoon,3\n",
            "m.csv: line 3: `noon` is not a timestamp",
        ),
        (
            "timestamp,kwh\n1600000000,5\n",
            "no energy inside the traces' window (2023-11-14T22:13:20Z",
        ),
    ] {
        let out = calibrate(csv);
        assert_eq!(out.status.code(), Some(2), "{csv}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{csv}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing written on failure");
    }
    let out = run(
        &dir.0,
        &[
            "calibrate",
            "--traces",
            "missing.json",
            "--measured-energy",
            "m.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));

    // `calibration_file` is relative to the config file's folder, checked
    // at startup (and by `config check`), naming key, file and value.
    let conf_dir = dir.0.join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let config = conf_dir.join("ps.toml");
    std::fs::write(&config, "[green]\ncalibration_file = \"cal.toml\"\n").unwrap();
    let check = || {
        run(
            &dir.0,
            &["--config", config.to_str().unwrap(), "config", "check"],
        )
    };
    let out = check();
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("green.calibration_file") && e.contains("conf/cal.toml"),
        "{e}"
    );
    std::fs::write(conf_dir.join("cal.toml"), "[factors]\n\"order-svc\" = -3\n").unwrap();
    let e = stderr(&check());
    assert!(e.contains("`factors.order-svc` = -3 is outside"), "{e}");
    std::fs::write(conf_dir.join("cal.toml"), "[factors]\n\"order-svc\" = 3\n").unwrap();
    let out = check();
    assert!(out.status.success(), "{}", stderr(&out));
}
