//! Release plumbing: the tag check (`chart-vX` must equal Chart.yaml's
//! version), the version-bump guard of chart CI, the workflow files
//! (actionlint, with shellcheck on their scripts), the scripts themselves
//! (shellcheck), the packaged chart's contents, and the image's user and
//! ports against the chart's.

use std::path::Path;
use std::process::{Command, Output};

use super::common::TempDir;
use super::render::{Values, at, render, seq_at, str_at};
use super::tools::{chart_dir, helm, ok, output, repo, text, tool};

fn tag_check(tag: &str, chart: Option<&Path>, github_output: Option<&Path>) -> Output {
    let mut cmd = Command::new(repo().join("scripts/check-helm-tag-version.sh"));
    cmd.arg(tag).env_remove("GITHUB_OUTPUT");
    if let Some(c) = chart {
        cmd.arg(c);
    }
    if let Some(o) = github_output {
        cmd.env("GITHUB_OUTPUT", o);
    }
    output(&mut cmd)
}

#[test]
fn the_tag_check_accepts_exactly_the_chart_version() {
    let dir = TempDir::new("helm-tag");
    let chart = dir.0.join("Chart.yaml");
    let write = |body: &str| std::fs::write(&chart, body).unwrap();
    // (Chart.yaml, tag, exit code, prerelease when accepted)
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "apiVersion: v2\nname: x\nversion: 1.2.0\nappVersion: \"0.9.0\"\n",
            "chart-v1.2.0",
            0,
            "false",
        ),
        (
            "apiVersion: v2\nname: x\nversion: 1.2.0\n",
            "refs/tags/chart-v1.2.0",
            0,
            "false",
        ),
        (
            "apiVersion: v2\nname: x\nversion: 1.2.0\n",
            "chart-v1.2.1",
            1,
            "",
        ),
        // The appVersion is not the chart's version.
        (
            "apiVersion: v2\nname: x\nversion: 1.2.0\nappVersion: \"0.9.0\"\n",
            "chart-v0.9.0",
            1,
            "",
        ),
        (
            "appVersion: 3.0.0\nversion: \"1.2.0\" # bumped for the PDB\n",
            "chart-v1.2.0",
            0,
            "false",
        ),
        // An indented `version:` (under annotations) is not the chart's.
        (
            "version: 1.2.0\nannotations:\n  version: 7.7.7\n",
            "chart-v7.7.7",
            1,
            "",
        ),
        // Prerelease suffixes are part of the version and mark a prerelease.
        ("version: 1.3.0-rc.1\n", "chart-v1.3.0-rc.1", 0, "true"),
        ("version: 1.3.0-rc.1\n", "chart-v1.3.0", 1, ""),
        ("version: 1.3.0-rc.1\n", "chart-v1.3.0-rc.2", 1, ""),
        ("version: 1.3.0\n", "chart-v1.3.0-rc.1", 1, ""),
        ("version: 2.0.0-beta.2\n", "chart-v2.0.0-beta.2", 0, "true"),
        ("version: 0.5.0-alpha\n", "chart-v0.5.0-alpha", 0, "true"),
        (
            "version: 1.0.0+build.7\n",
            "chart-v1.0.0+build.7",
            0,
            "false",
        ),
        // Not chart release tags, or not semantic versions.
        ("version: 1.2.0\n", "v1.2.0", 2, ""),
        ("version: 1.2.0\n", "1.2.0", 2, ""),
        ("version: 1.2.0\n", "chart-1.2.0", 2, ""),
        ("version: 1.2\n", "chart-v1.2", 2, ""),
        ("version: 01.2.0\n", "chart-v01.2.0", 2, ""),
        ("name: x\n", "chart-v1.2.0", 2, ""),
    ];
    for (body, tag, code, prerelease) in cases {
        write(body);
        let gh = dir.0.join("github-output");
        let _ = std::fs::remove_file(&gh);
        let out = tag_check(tag, Some(&chart), Some(&gh));
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{tag} vs {body:?}: {report}"
        );
        if *code == 0 {
            let version = tag
                .trim_start_matches("refs/tags/")
                .trim_start_matches("chart-v");
            let want = format!("version={version}\nprerelease={prerelease}\n");
            assert_eq!(text(&out.stdout), want, "{tag}");
            assert_eq!(std::fs::read_to_string(&gh).unwrap(), want, "{tag}");
        } else {
            assert!(!gh.exists(), "{tag}: wrote GITHUB_OUTPUT on failure");
            assert!(
                text(&out.stderr).contains("check-helm-tag-version:"),
                "{report}"
            );
        }
    }
    // A mismatch names both versions.
    write("version: 1.2.0\n");
    let out = tag_check("chart-v1.4.0", Some(&chart), None);
    let err = text(&out.stderr);
    assert!(err.contains("1.4.0") && err.contains("1.2.0"), "{err}");
    // Bad usage and a missing file.
    assert_eq!(
        output(&mut Command::new(
            repo().join("scripts/check-helm-tag-version.sh")
        ))
        .status
        .code(),
        Some(2)
    );
    let out = tag_check("chart-v1.2.0", Some(&dir.0.join("nope.yaml")), None);
    assert_eq!(out.status.code(), Some(2));
    // The repository's chart: its own version passes.
    let chart_yaml = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let version = chart_yaml
        .lines()
        .find_map(|l| l.strip_prefix("version: "))
        .unwrap();
    let out = tag_check(&format!("chart-v{version}"), None, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn git(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir))
}

fn bump_guard(dir: &Path, base: &str) -> Output {
    output(
        Command::new(repo().join("scripts/check-chart-version-bump.sh"))
            .args([base, "charts/demo"])
            .current_dir(dir),
    )
}

#[test]
fn chart_ci_refuses_a_chart_change_without_a_version_bump() {
    let dir = TempDir::new("helm-bump");
    let d = &dir.0;
    git(d, &["init", "-q"]);
    std::fs::write(d.join("README.md"), "x\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "no chart yet"]);
    let chart = d.join("charts/demo");
    std::fs::create_dir_all(&chart).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 1.4.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "replicas: 1\n").unwrap();
    // A chart that is new since the base passes.
    assert_eq!(bump_guard(d, "HEAD").status.code(), Some(0));
    git(d, &["add", "."]);
    git(d, &["commit", "-qm", "chart"]);
    let base = git(d, &["rev-parse", "HEAD"]).trim().to_owned();
    // Unchanged: passes.
    assert_eq!(bump_guard(d, &base).status.code(), Some(0));
    // Changed without a bump: refused, naming the changed file.
    std::fs::write(chart.join("values.yaml"), "replicas: 2\n").unwrap();
    let out = bump_guard(d, &base);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("still 1.4.0") && err.contains("charts/demo/values.yaml"),
        "{err}"
    );
    // With a bump (a prerelease counts): passes.
    for bumped in ["1.4.1", "1.5.0-rc.1", "2.0.0"] {
        std::fs::write(
            chart.join("Chart.yaml"),
            format!("apiVersion: v2\nname: demo\nversion: {bumped}\n"),
        )
        .unwrap();
        let out = bump_guard(d, &base);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{bumped}: {}",
            text(&out.stderr)
        );
    }
    // Going down is refused.
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 1.3.9\n",
    )
    .unwrap();
    let out = bump_guard(d, &base);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("down"), "{}", text(&out.stderr));
    // A base that is not a revision is bad usage.
    assert_eq!(bump_guard(d, "no-such-ref").status.code(), Some(2));
}

fn actionlint(files: &[std::path::PathBuf]) -> Output {
    output(
        Command::new(tool("PERF_SENTINEL_ACTIONLINT"))
            .args(["-color=false", "-shellcheck"])
            .arg(tool("PERF_SENTINEL_SHELLCHECK"))
            .args(files)
            .current_dir(repo()),
    )
}

#[test]
fn the_workflows_pass_actionlint_and_do_what_the_release_needs() {
    let dir = repo().join(".github/workflows");
    let files: Vec<_> = ["ci.yml", "helm-ci.yml", "helm-release.yml", "release.yml"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    let out = actionlint(&files);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // actionlint is not a rubber stamp: a broken expression fails.
    let tmp = TempDir::new("helm-actionlint");
    let broken = tmp.0.join("broken.yml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&files[2])
            .unwrap()
            .replace("steps.tag.outputs.version", "steps.tag.outputs.version ||"),
    )
    .unwrap();
    assert!(!actionlint(&[broken]).status.success());

    let release: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&files[2]).unwrap()).unwrap();
    assert_eq!(seq_at(&release, &["on", "push", "tags"]), ["chart-v*"]);
    let steps = seq_at(&release, &["jobs", "release", "steps"]);
    let runs: String = steps
        .iter()
        .filter_map(|s| at(s, &["run"]).as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let uses: Vec<&str> = steps
        .iter()
        .filter_map(|s| at(s, &["uses"]).as_str())
        .collect();
    for needed in [
        "scripts/check-helm-tag-version.sh",
        "helm package",
        "helm push",
        "cosign sign --yes",
        "oras push",
    ] {
        assert!(
            runs.contains(needed),
            "helm-release.yml does not run `{needed}`"
        );
    }
    for action in [
        "actions/attest-build-provenance@",
        "anchore/sbom-action@",
        "actions/attest-sbom@",
        "softprops/action-gh-release@",
    ] {
        assert!(
            uses.iter().any(|u| u.starts_with(action)),
            "helm-release.yml lacks {action}"
        );
    }
    let gh_release = steps
        .iter()
        .find(|s| {
            at(s, &["uses"])
                .as_str()
                .is_some_and(|u| u.starts_with("softprops/"))
        })
        .unwrap();
    assert_eq!(at(gh_release, &["with", "draft"]).as_bool(), Some(true));
    assert!(str_at(gh_release, &["with", "prerelease"]).contains("steps.tag.outputs.prerelease"));
    let sbom = steps
        .iter()
        .find(|s| {
            at(s, &["uses"])
                .as_str()
                .is_some_and(|u| u.starts_with("anchore/"))
        })
        .unwrap();
    assert_eq!(str_at(sbom, &["with", "format"]), "spdx-json");
}

#[test]
fn the_scripts_pass_shellcheck() {
    let out = output(
        Command::new(tool("PERF_SENTINEL_SHELLCHECK"))
            .args([
                "-x",
                "scripts/test.sh",
                "scripts/install-test-tools.sh",
                "scripts/fuzz.sh",
                "scripts/soak.sh",
                "scripts/measure-daemon.sh",
                "scripts/lib/daemon.sh",
                "scripts/check-helm-tag-version.sh",
                "scripts/check-chart-version-bump.sh",
                ".ci/run",
            ])
            .current_dir(repo()),
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn the_packaged_chart_carries_its_documents_and_leaves_ci_files_out() {
    let dir = TempDir::new("helm-package");
    ok(helm()
        .arg("package")
        .arg(chart_dir())
        .arg("--destination")
        .arg(&dir.0));
    let chart: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let version = str_at(&chart, &["version"]);
    // The chart's version and the daemon's are two fields.
    assert!(!str_at(&chart, &["appVersion"]).is_empty());
    let tgz = dir.0.join(format!("perf-sentinel-{version}.tgz"));
    let listing = ok(Command::new("tar").arg("-tzf").arg(&tgz));
    let files: Vec<&str> = listing.lines().collect();
    for f in [
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "CHANGELOG.md",
        "artifacthub-repo.yml",
        "templates/NOTES.txt",
        "templates/tests/test-health.yaml",
    ] {
        assert!(
            files.contains(&format!("perf-sentinel/{f}").as_str()),
            "{f} missing from the package:\n{listing}"
        );
    }
    assert!(
        !files.iter().any(|f| f.starts_with("perf-sentinel/ci/")),
        "{listing}"
    );
    // The chart's CHANGELOG has an entry for this version.
    let changelog = std::fs::read_to_string(chart_dir().join("CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("## {version}")),
        "no `## {version}` in CHANGELOG.md"
    );
}

#[test]
fn the_image_runs_as_the_user_and_on_the_ports_the_chart_expects() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let last = |directive: &str| {
        dockerfile
            .lines()
            .filter_map(|l| l.strip_prefix(directive))
            .next_back()
            .unwrap_or_else(|| panic!("no {directive} in the Dockerfile"))
            .trim()
            .to_owned()
    };
    let r = render(&Values::new());
    let user = at(r.pod_spec(), &["securityContext", "runAsUser"])
        .as_i64()
        .unwrap();
    let group = at(r.pod_spec(), &["securityContext", "runAsGroup"])
        .as_i64()
        .unwrap();
    assert_eq!(last("USER "), format!("{user}:{group}"));
    let ports: Vec<String> = seq_at(r.container(), &["ports"])
        .iter()
        .map(|p| at(p, &["containerPort"]).as_i64().unwrap().to_string())
        .collect();
    assert_eq!(last("EXPOSE "), ports.join(" "));
    // The chart's args start with the subcommand: the entrypoint is the
    // binary itself.
    assert_eq!(last("ENTRYPOINT "), r#"["/usr/local/bin/perf-sentinel"]"#);
    assert!(last("CMD ").starts_with(r#"["watch""#));
    assert_eq!(r.args()[0], "watch");
}
