//! The command line as a user meets it: configuration errors reported all at
//! once with file and key, `config check`, `detectors`, and a clear failure
//! when a port is taken.

mod common;

use std::process::{Command, Output};

use common::{TempDir, binary, free_port};

fn run(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(&dir.0)
        .env("RUST_LOG", "warn")
        .output()
        .expect("cannot run perf-sentinel")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_config_problem_is_reported_at_once_with_file_and_key() {
    let dir = TempDir::new("cli-bad");
    let path = dir.0.join("bad.toml");
    std::fs::write(
        &path,
        "[daemon]\nlisten_port_grpc = 70000\ntrace_tll_ms = 5\n\n[detection]\nn_plus_one_min_occurrences = \"five\"\n\n[detectors.n_plus_one_sql]\nwindow_duration_ms = 0\n\n[detectors.no_such_detector]\nenabled = true\n",
    )
    .unwrap();
    for args in [
        vec!["watch", "--config", path.to_str().unwrap()],
        vec!["config", "check", "--config", path.to_str().unwrap()],
    ] {
        let out = run(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        let file = path.display().to_string();
        for needle in [
            "`daemon.listen_port_grpc`",
            "70000",
            "`daemon.trace_tll_ms`",
            "did you mean `trace_ttl_ms`",
            "`detection.n_plus_one_min_occurrences`",
            "no_such_detector",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(
            err.matches(&file).count() >= 4,
            "each problem names the file:\n{err}"
        );
        assert!(out.stdout.is_empty(), "nothing on stdout");
    }
}

#[test]
fn a_detector_refusing_its_table_names_it() {
    let dir = TempDir::new("cli-det");
    std::fs::write(
        dir.0.join(".perf-sentinel.toml"),
        "[detectors.n_plus_one_sql]\nmin_occurrences = 1\n",
    )
    .unwrap();
    // Picked up from the working directory without --config.
    let out = run(&dir, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(".perf-sentinel.toml"), "{err}");
    assert!(err.contains("detectors.n_plus_one_sql"), "{err}");
    assert!(err.contains("min_occurrences"), "{err}");
}

#[test]
fn defaults_need_no_file_and_detectors_are_listed() {
    let dir = TempDir::new("cli-ok");
    let out = run(&dir, &["config", "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("built-in defaults"));

    let out = run(&dir, &["detectors"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    for id in ["n_plus_one_sql", "n_plus_one_http"] {
        let line = listing
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{listing}"));
        assert!(line.contains("yes") && line.contains("builtin"), "{line}");
    }

    std::fs::write(
        dir.0.join(".perf-sentinel.toml"),
        "[detectors.n_plus_one_http]\nenabled = false\n",
    )
    .unwrap();
    let listing = text(&run(&dir, &["detectors"]).stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with("n_plus_one_http"))
        .unwrap();
    assert!(line.contains(" no "), "{line}");
}

#[test]
fn a_taken_port_is_a_clear_startup_failure() {
    let dir = TempDir::new("cli-port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let grpc = free_port().to_string();
    let out = run(
        &dir,
        &[
            "watch",
            "--listen-port-grpc",
            &grpc,
            "--listen-port-http",
            &port,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn equal_ports_on_the_command_line_are_refused() {
    let dir = TempDir::new("cli-eq");
    let out = run(
        &dir,
        &[
            "watch",
            "--listen-port-grpc",
            "4999",
            "--listen-port-http",
            "4999",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("must differ"));
}

#[test]
fn secrets_come_from_the_environment_never_the_file() {
    let dir = TempDir::new("cli-secret");
    let check = |toml: &str, env: Option<(&str, &str)>| {
        std::fs::write(dir.0.join(".perf-sentinel.toml"), toml).unwrap();
        let mut cmd = Command::new(binary());
        cmd.args(["config", "check"])
            .current_dir(&dir.0)
            .env_remove("PS_TEST_ACK_KEY");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // A literal key is refused, naming the key and not echoing the secret.
    let out = check("[daemon.ack]\napi_key = \"hunter2hunter2\"\n", None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("daemon.ack.api_key"), "{err}");
    assert!(
        !err.contains("hunter2hunter2"),
        "the secret must not be echoed: {err}"
    );

    let by_env = "[daemon.ack]\napi_key = \"env:PS_TEST_ACK_KEY\"\n";
    let out = check(by_env, None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("PS_TEST_ACK_KEY") && err.contains("not set"),
        "{err}"
    );

    let out = check(by_env, Some(("PS_TEST_ACK_KEY", "short")));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("shorter than 12"));

    let out = check(by_env, Some(("PS_TEST_ACK_KEY", "a-long-enough-key")));
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Credentials of other sections, and URLs carrying them, likewise.
    let out = check(
        "[green.kepler]\nendpoint = \"http://ops:s3cret-pw@kepler:9102/metrics\"\n\
         [green.electricity_maps]\napi_key = \"em-literal-key-1\"\n",
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("green.kepler.endpoint") && err.contains("must not embed credentials"),
        "{err}"
    );
    assert!(err.contains("green.electricity_maps.api_key"), "{err}");
    assert!(
        !err.contains("s3cret-pw") && !err.contains("em-literal-key-1"),
        "{err}"
    );
}

#[test]
fn values_outside_their_comfort_zone_warn_but_do_not_refuse() {
    let dir = TempDir::new("cli-comfort");
    let path = dir.0.join("edgy.toml");
    let (grpc, http) = (free_port(), free_port());
    std::fs::write(
        &path,
        format!(
            "[daemon]\nlisten_port_grpc = {grpc}\nlisten_port_http = {http}\n\
             analysis_queue_capacity = 10\nsampling_rate = 0.01\n"
        ),
    )
    .unwrap();
    let out = run(
        &dir,
        &["config", "check", "--config", path.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!(
            "warning: {file}: `daemon.analysis_queue_capacity`: 10 spans"
        )),
        "{err}"
    );
    assert!(err.contains("`daemon.sampling_rate`: 0.01"), "{err}");

    // The daemon starts and logs the same warnings, before it says it is
    // listening (read up to that line, or to the end if it exits).
    let mut child = Command::new(binary())
        .args(["watch", "--config", path.to_str().unwrap()])
        .current_dir(&dir.0)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let done = line.contains("perf-sentinel listening");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = seen.join("\n");
    assert!(
        log.contains("perf-sentinel listening"),
        "it started:\n{log}"
    );
    for key in ["daemon.analysis_queue_capacity", "daemon.sampling_rate"] {
        assert!(
            seen.iter().any(|l| l.contains("WARN") && l.contains(key)),
            "{key}:\n{log}"
        );
    }
}

#[test]
fn tls_needs_both_files_and_readable_ones() {
    let dir = TempDir::new("cli-tls");
    std::fs::write(
        dir.0.join(".perf-sentinel.toml"),
        "[daemon]\ntls_cert_path = \"/nope/cert.pem\"\n",
    )
    .unwrap();
    let out = run(&dir, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tls_key_path"));

    std::fs::write(
        dir.0.join(".perf-sentinel.toml"),
        "[daemon]\ntls_cert_path = \"/nope/cert.pem\"\ntls_key_path = \"/nope/key.pem\"\n",
    )
    .unwrap();
    let out = run(&dir, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("/nope/cert.pem"), "{err}");
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let dir = TempDir::new("cli-example");
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/perf-sentinel.toml");
    let out = Command::new(binary())
        .args(["config", "check", "--config", example.to_str().unwrap()])
        .current_dir(&dir.0)
        .env("PERF_SENTINEL_ACK_API_KEY", "example-key-long-enough")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("configuration OK"));
}
