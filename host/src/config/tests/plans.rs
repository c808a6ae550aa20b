//! Tests of the detector plan: `[detectors.<id>]` tables, `[detection]`
//! inheritance, host-handled keys and `[environments.<env>]` overlays.

use super::*;

fn builtins() -> Vec<&'static dyn DetectorFactory> {
    perf_sentinel_detectors::link();
    detector_api::builtin_factories()
}

fn plans(text: &str) -> Result<Vec<DetectorPlan>, ConfigError> {
    from_toml_str(text, "det.toml")
        .unwrap()
        .detector_plans(&builtins())
}

fn plan(text: &str, id: &str) -> DetectorPlan {
    plans(text)
        .unwrap()
        .into_iter()
        .find(|p| p.id == id)
        .unwrap()
}

fn plan_problems(text: &str) -> Vec<ConfigProblem> {
    match plans(text) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn int(plan: &DetectorPlan, key: &str) -> Option<i64> {
    plan.params.get(key).and_then(toml::Value::as_integer)
}

#[test]
fn defaults_plan_every_builtin() {
    let all = plans("").unwrap();
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert!(
        ids.contains(&"n_plus_one_sql") && ids.contains(&"n_plus_one_http"),
        "{ids:?}"
    );
    let sql = plan("", "n_plus_one_sql");
    assert!(sql.enabled && sql.services.is_empty() && sql.params.is_empty());
}

#[test]
fn unknown_detector_is_refused() {
    let problems = plan_problems("[detectors.n_plus_one_sqll]\nenabled = false");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, "detectors.n_plus_one_sqll");
    assert_eq!(problems[0].file, "det.toml");
    assert!(
        problems[0]
            .message
            .starts_with("no detector `n_plus_one_sqll`; known: ")
            && problems[0]
                .message
                .contains("n_plus_one_http, n_plus_one_messaging, n_plus_one_sql"),
        "{}",
        problems[0].message
    );
}

#[test]
fn detector_build_errors_are_reported_with_its_message() {
    let problems = plan_problems(
        "[detectors.n_plus_one_sql]\nmin_occurrences = 1\n[detectors.n_plus_one_http]\nenabled = false\nmin_ocurrences = 3",
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(
        problems[0].key, "detectors.n_plus_one_http",
        "disabled, still checked"
    );
    assert!(
        problems[0].message.contains("min_ocurrences"),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[1].key, "detectors.n_plus_one_sql");
    assert_eq!(
        problems[1].message,
        "`min_occurrences`: must be at least 2, got 1"
    );
}

#[test]
fn detection_keys_are_inherited_unless_the_table_sets_them() {
    let text = "[detection]\nn_plus_one_min_occurrences = 7\n[detectors.n_plus_one_http]\nmin_occurrences = 3";
    assert_eq!(
        int(&plan(text, "n_plus_one_sql"), "min_occurrences"),
        Some(7)
    );
    assert_eq!(
        int(&plan(text, "n_plus_one_http"), "min_occurrences"),
        Some(3)
    );
}

#[test]
fn host_keys_are_honoured() {
    let text = "[detectors.n_plus_one_sql]\nenabled = false\nservices = [\"a\"]\nexclude_services = [\"b\"]";
    let sql = plan(text, "n_plus_one_sql");
    assert!(!sql.enabled);
    assert_eq!(
        (sql.services, sql.exclude_services),
        (vec!["a".to_owned()], vec!["b".to_owned()])
    );
    assert!(sql.params.is_empty());
    let problems = problems_of("[detectors.n_plus_one_sql]\nenabled = \"no\"\nservices = [1]");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(problems[0].key, "detectors.n_plus_one_sql.enabled");
    assert_eq!(
        problems[1].message,
        "item 0: expected a string, found an integer (1)"
    );
}

const OVERLAY: &str = "
[detectors.n_plus_one_sql]
services = [\"orders\"]
min_occurrences = 4
[environments.production.detectors.n_plus_one_sql]
enabled = false
services = []
window_duration_ms = 900
";

#[test]
fn overlay_applies_only_in_its_environment() {
    let staging = plan(OVERLAY, "n_plus_one_sql");
    assert!(staging.enabled);
    assert_eq!(staging.services, vec!["orders".to_owned()]);
    assert_eq!(int(&staging, "window_duration_ms"), None);

    let production = format!("[daemon]\nenvironment = \"production\"\n{OVERLAY}");
    let prod = plan(&production, "n_plus_one_sql");
    assert!(!prod.enabled);
    assert!(prod.services.is_empty(), "an overlay can widen the scope");
    assert_eq!(int(&prod, "min_occurrences"), Some(4));
    assert_eq!(int(&prod, "window_duration_ms"), Some(900));
}

#[test]
fn overlay_typos_fail_in_every_environment() {
    let problems = plan_problems(
        "[environments.production.detectors.n_plus_one_sql]\nwindow_duraton_ms = 900\n[environments.production.detectors.slow_htp]\nenabled = true",
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(
        problems[0].key,
        "environments.production.detectors.slow_htp"
    );
    assert_eq!(
        problems[1].key,
        "environments.production.detectors.n_plus_one_sql"
    );
    assert!(
        problems[1].message.contains("window_duraton_ms"),
        "{}",
        problems[1].message
    );
    let p = one_problem("[environments.production]\nthresholds = {}");
    assert_eq!(p.message, "unknown key `thresholds`; known keys: detectors");
}

/// A plugin-like factory, to check what the host passes to `build`.
struct Recording;
struct Nothing;
impl Detector for Nothing {
    fn detect(&mut self, _: &TraceView<'_>, _: &mut RVec<Finding>) -> Result<(), DetectorError> {
        Ok(())
    }
}
impl DetectorFactory for Recording {
    fn id(&self) -> &str {
        "recording"
    }
    fn description(&self) -> &str {
        "test"
    }
    fn enabled_by_default(&self) -> bool {
        false
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        match config.get("level").and_then(toml::Value::as_integer) {
            Some(l) if l > 3 => Err(BuildError::invalid(
                "level",
                format!("must be at most 3, got {l}"),
            )),
            _ => Ok(Box::new(Nothing)),
        }
    }
}

#[test]
fn factory_defaults_and_overlay_errors_are_attributed() {
    let text =
        "[detectors.recording]\nlevel = 2\n[environments.prod.detectors.recording]\nlevel = 9\n";
    let config = from_toml_str(text, "p.toml").unwrap();
    let Err(ConfigError::Invalid(problems)) = config.detector_plans(&[&Recording]) else {
        panic!("expected Invalid");
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].to_string(),
        "p.toml: `environments.prod.detectors.recording`: `level`: must be at most 3, got 9"
    );
    let config = from_toml_str("", "p.toml").unwrap();
    let plans = config.detector_plans(&[&Recording]).unwrap();
    assert!(!plans[0].enabled, "the factory's default applies");
}

#[test]
fn sanitizer_mode_is_validated_and_kept() {
    let c = from_toml_str(
        "[detection]\nsanitizer_aware_classification = \"strict\"",
        "f.toml",
    )
    .unwrap();
    assert_eq!(
        c.detection["sanitizer_aware_classification"].as_str(),
        Some("strict")
    );
    let Err(ConfigError::Invalid(p)) = from_toml_str(
        "[detection]\nsanitizer_aware_classification = \"sometimes\"",
        "f.toml",
    ) else {
        panic!("an unknown mode must be refused");
    };
    assert_eq!(p[0].key, "detection.sanitizer_aware_classification");
    assert!(p[0].message.contains("sometimes"), "{}", p[0].message);
}
