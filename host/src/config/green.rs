//! `[green]`: energy and carbon scoring, and the energy scrapers under
//! `[green.<backend>]`. Every key typed and ranged like the rest of the file;
//! a scraper is on when its section is present.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Table, Value};

use super::fields::{Section, expected};
use super::problems::Problems;
use super::secrets::env_reference;

/// `[green]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GreenConfig {
    /// `false` turns scoring and every scraper off.
    pub enabled: bool,
    /// Region (cloud region or ISO country code) used when neither the span
    /// nor `service_regions` names one.
    pub default_region: Option<String>,
    /// `[green.service_regions]`: service → region.
    pub service_regions: BTreeMap<String, String>,
    /// Embodied (manufacturing) carbon charged once per analyzed trace.
    pub embodied_carbon_per_request_gco2: f64,
    /// Per-service factors on the proxy energy (`perf-sentinel calibrate`
    /// writes it); relative to the config file's folder.
    pub calibration_file: Option<std::path::PathBuf>,
    pub scaphandre: Option<ScaphandreConfig>,
    pub kepler: Option<KeplerConfig>,
    pub redfish: Option<RedfishConfig>,
    pub cloud: Option<CloudConfig>,
    pub electricity_maps: Option<ElectricityMapsConfig>,
}

impl Default for GreenConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_region: None,
            service_regions: BTreeMap::new(),
            embodied_carbon_per_request_gco2: 0.001,
            calibration_file: None,
            scaphandre: None,
            kepler: None,
            redfish: None,
            cloud: None,
            electricity_maps: None,
        }
    }
}

/// Keys every scraper shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// `http` or `https` URL, checked.
    pub endpoint: String,
    pub interval: Duration,
    /// Whole request, connect to last body byte.
    pub timeout: Duration,
    /// Bodies larger than this are refused unread past the cap.
    pub max_body_bytes: usize,
    /// The variable holding an `Authorization` header value, if any.
    pub auth_header_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaphandreConfig {
    pub target: ScrapeTarget,
    /// service → text the process's `exe` or `cmdline` label contains.
    pub process_map: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeplerKind {
    Container,
    Process,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeplerConfig {
    pub target: ScrapeTarget,
    pub metric_kind: KeplerKind,
    /// service → container name (or process command) in Kepler's labels.
    pub service_mappings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishConfig {
    /// Interval, timeout, body cap and credentials shared by every
    /// chassis; `endpoint` is the first chassis (for logs and health).
    pub target: ScrapeTarget,
    /// Each chassis `Power` or `EnvironmentMetrics` resource and the
    /// services running on it, which share its power.
    pub chassis: Vec<Chassis>,
}

/// One machine read through its BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chassis {
    pub endpoint: String,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// Prometheus base URL; the query goes to `/api/v1/query`.
    pub target: ScrapeTarget,
    /// PromQL giving CPU utilisation (0..1 or 0..100) per service.
    pub query: String,
    /// The result label that names the service.
    pub service_label: String,
    /// service → instance type of the embedded power table.
    pub instance_types: BTreeMap<String, String>,
    pub default_instance_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectricityMapsConfig {
    /// API base, `https://api.electricitymap.org/v3` unless set.
    pub target: ScrapeTarget,
    /// The variable holding the token: from `api_key = "env:VAR"`, else
    /// `PERF_SENTINEL_EMAPS_TOKEN`.
    pub token_env: String,
    /// region → Electricity Maps zone (e.g. `eu-west-3` → `FR`).
    pub region_map: BTreeMap<String, String>,
}

/// The variable read for the Electricity Maps token when `api_key` is unset.
pub const EMAPS_TOKEN_VAR: &str = "PERF_SENTINEL_EMAPS_TOKEN";
const EMAPS_DEFAULT_ENDPOINT: &str = "https://api.electricitymap.org/v3";

/// Reads `[green]`, recording every problem.
pub(crate) fn read_green(table: &Table, problems: &mut Problems<'_>) -> GreenConfig {
    let d = GreenConfig::default();
    let mut s = Section::new("green", table, problems);
    let mut c = GreenConfig {
        enabled: s.bool("enabled", d.enabled),
        default_region: s.string_opt("default_region"),
        service_regions: BTreeMap::new(),
        embodied_carbon_per_request_gco2: s.f64(
            "embodied_carbon_per_request_gco2",
            d.embodied_carbon_per_request_gco2,
            0.0..=1_000.0,
        ),
        ..GreenConfig::default()
    };
    match s.string_opt("calibration_file").as_deref() {
        Some("") => s.problem("calibration_file", "must not be empty"),
        Some(path) => c.calibration_file = Some(path.into()),
        None => {}
    }
    if c.default_region.as_deref() == Some("") {
        s.problem("default_region", "must not be empty");
        c.default_region = None;
    }
    c.service_regions = map_at(&mut s, "service_regions");
    if let Some(t) = s.table("scaphandre") {
        c.scaphandre = Some(read_scaphandre(t, s.problems()));
    }
    if let Some(t) = s.table("kepler") {
        c.kepler = Some(read_kepler(t, s.problems()));
    }
    if let Some(t) = s.table("redfish") {
        c.redfish = Some(read_redfish(t, s.problems()));
    }
    if let Some(t) = s.table("cloud") {
        c.cloud = Some(read_cloud(t, s.problems()));
    }
    if let Some(t) = s.table("electricity_maps") {
        c.electricity_maps = Some(read_emaps(t, s.problems()));
    }
    s.finish();
    c
}

/// A table of non-empty strings.
fn string_map(path: &str, table: &Table, problems: &mut Problems<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in table {
        match v {
            Value::String(s) if !s.is_empty() => {
                out.insert(k.clone(), s.clone());
            }
            Value::String(_) => problems.push(&format!("{path}.{k}"), "must not be empty"),
            other => problems.push(&format!("{path}.{k}"), expected("a string", other)),
        }
    }
    out
}

/// The string map at `key` of `s`, empty when absent (problems in it are
/// reported under its full key).
fn map_at(s: &mut Section<'_, '_, '_>, key: &'static str) -> BTreeMap<String, String> {
    let path = s.key(key);
    s.table(key)
        .map(|t| string_map(&path, t, s.problems()))
        .unwrap_or_default()
}

/// As [`map_at`], for a map the section cannot work without: an absent
/// or empty one is a problem saying it `is required: {what}`.
fn required_map(
    s: &mut Section<'_, '_, '_>,
    key: &'static str,
    what: &str,
) -> BTreeMap<String, String> {
    let map = map_at(s, key);
    if map.is_empty() {
        s.problem(key, format!("is required: {what}"));
    }
    map
}

struct TargetDefaults {
    endpoint: Option<&'static str>,
    interval_secs: u64,
    interval_range: std::ops::RangeInclusive<u64>,
    interval_key: &'static str,
}

fn read_target(s: &mut Section<'_, '_, '_>, d: TargetDefaults) -> ScrapeTarget {
    let endpoint = match (s.string_opt("endpoint"), d.endpoint) {
        (Some(e), _) => match check_url(&e) {
            Ok(()) => e,
            Err(message) => {
                s.problem("endpoint", message);
                String::new()
            }
        },
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            s.problem("endpoint", "is required: the URL to scrape");
            String::new()
        }
    };
    let interval = s.u64(d.interval_key, d.interval_secs, d.interval_range);
    let timeout_ms = s.u64("timeout_ms", 5_000, 100..=120_000);
    let max_body_bytes = s.usize("max_body_bytes", 4 << 20, 1024..=256 << 20);
    // Checked with every other credential by `check_secrets`.
    let auth_header_env = s
        .get("auth_header")
        .and_then(|v| env_reference(v).ok())
        .map(str::to_owned);
    ScrapeTarget {
        endpoint,
        interval: Duration::from_secs(interval),
        timeout: Duration::from_millis(timeout_ms),
        max_body_bytes,
        auth_header_env,
    }
}

fn check_url(text: &str) -> Result<(), String> {
    match reqwest::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "must be an http:// or https:// URL with a host, got scheme `{}`",
            u.scheme()
        )),
        Err(e) => Err(format!("is not a URL: {e}")),
    }
}

fn read_scaphandre(table: &Table, problems: &mut Problems<'_>) -> ScaphandreConfig {
    let mut s = Section::new("green.scaphandre", table, problems);
    let target = read_target(
        &mut s,
        TargetDefaults {
            endpoint: None,
            interval_secs: 5,
            interval_range: 1..=3_600,
            interval_key: "scrape_interval_secs",
        },
    );
    let process_map = required_map(
        &mut s,
        "process_map",
        "map each service to text its process's exe or cmdline contains",
    );
    s.finish();
    ScaphandreConfig {
        target,
        process_map,
    }
}

fn read_kepler(table: &Table, problems: &mut Problems<'_>) -> KeplerConfig {
    let mut s = Section::new("green.kepler", table, problems);
    let target = read_target(
        &mut s,
        TargetDefaults {
            endpoint: None,
            interval_secs: 5,
            interval_range: 1..=3_600,
            interval_key: "scrape_interval_secs",
        },
    );
    let kind = s.string("metric_kind", "container", |v| match v {
        "container" | "process" => Ok(()),
        other => Err(format!(
            "must be \"container\" or \"process\", got {other:?}"
        )),
    });
    let service_mappings = required_map(
        &mut s,
        "service_mappings",
        "map each service to its container (or process) name",
    );
    s.finish();
    KeplerConfig {
        target,
        metric_kind: if kind == "process" {
            KeplerKind::Process
        } else {
            KeplerKind::Container
        },
        service_mappings,
    }
}

/// One chassis as `endpoint` + `services`, and/or any number through
/// `service_mappings` (service → chassis URL); services mapped to the same
/// URL share that chassis.
fn read_redfish(table: &Table, problems: &mut Problems<'_>) -> RedfishConfig {
    let mut s = Section::new("green.redfish", table, problems);
    let mappings = map_at(&mut s, "service_mappings");
    let single = s.get("endpoint").is_some();
    let mut target = read_target(
        &mut s,
        TargetDefaults {
            // Optional when `service_mappings` names the chassis.
            endpoint: (!mappings.is_empty()).then_some(""),
            interval_secs: 60,
            interval_range: 15..=3_600,
            interval_key: "scrape_interval_secs",
        },
    );
    let mut chassis: Vec<Chassis> = Vec::new();
    if single {
        let services = s.string_array("services").unwrap_or_default();
        if services.is_empty() {
            s.problem(
                "services",
                "is required with `endpoint`: the services running on that chassis",
            );
        }
        chassis.push(Chassis {
            endpoint: target.endpoint.clone(),
            services,
        });
    } else if s.get("services").is_some() {
        s.problem(
            "services",
            "needs `endpoint`; with `service_mappings` map each service to its chassis URL",
        );
    }
    for (service, url) in &mappings {
        if let Err(message) = check_url(url) {
            s.problem("service_mappings", format!("`{service}`: {message}"));
            continue;
        }
        match chassis.iter_mut().find(|c| &c.endpoint == url) {
            Some(c) if !c.services.contains(service) => c.services.push(service.clone()),
            Some(_) => {}
            None => chassis.push(Chassis {
                endpoint: url.clone(),
                services: vec![service.clone()],
            }),
        }
    }
    if chassis.len() > MAX_CHASSIS {
        s.problem(
            "service_mappings",
            format!("names {} chassis; at most {MAX_CHASSIS}", chassis.len()),
        );
        chassis.truncate(MAX_CHASSIS);
    }
    if let Some(first) = chassis.first() {
        target.endpoint = first.endpoint.clone();
    }
    s.finish();
    RedfishConfig { target, chassis }
}

/// Chassis read by one Redfish scraper: each scrape reads them one after
/// the other within the interval.
const MAX_CHASSIS: usize = 64;

fn read_cloud(table: &Table, problems: &mut Problems<'_>) -> CloudConfig {
    let mut s = Section::new("green.cloud", table, problems);
    let target = read_target(
        &mut s,
        TargetDefaults {
            endpoint: None,
            interval_secs: 60,
            interval_range: 15..=3_600,
            interval_key: "scrape_interval_secs",
        },
    );
    let query = s.string_opt("query").unwrap_or_default();
    if query.trim().is_empty() {
        s.problem(
            "query",
            "is required: PromQL giving CPU utilisation per service",
        );
    }
    let service_label = s.string("service_label", "service", |v| {
        if v.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(())
        }
    });
    let instance_types = map_at(&mut s, "instance_types");
    let default_instance_type = s.string_opt("default_instance_type");
    let known = crate::green::instances::known;
    for (service, it) in &instance_types {
        if !known(it) {
            let key = format!("instance_types.{service}");
            s.problem(&key, unknown_instance(it));
        }
    }
    if let Some(it) = &default_instance_type
        && !known(it)
    {
        s.problem("default_instance_type", unknown_instance(it));
    }
    if instance_types.is_empty() && default_instance_type.is_none() {
        s.problem(
            "instance_types",
            "set `instance_types` or `default_instance_type`: watts come from the instance's power figures",
        );
    }
    s.finish();
    CloudConfig {
        target,
        query,
        service_label,
        instance_types,
        default_instance_type,
    }
}

fn unknown_instance(it: &str) -> String {
    format!(
        "unknown instance type {it:?}; known: {}",
        crate::green::instances::names().join(", ")
    )
}

fn read_emaps(table: &Table, problems: &mut Problems<'_>) -> ElectricityMapsConfig {
    let mut s = Section::new("green.electricity_maps", table, problems);
    let target = read_target(
        &mut s,
        TargetDefaults {
            endpoint: Some(EMAPS_DEFAULT_ENDPOINT),
            interval_secs: 300,
            interval_range: 60..=86_400,
            interval_key: "poll_interval_secs",
        },
    );
    let token_env = s
        .get("api_key")
        .and_then(|v| env_reference(v).ok())
        .unwrap_or(EMAPS_TOKEN_VAR)
        .to_owned();
    let region_map = required_map(
        &mut s,
        "region_map",
        "map each region to its Electricity Maps zone (e.g. \"eu-west-3\" = \"FR\")",
    );
    s.finish();
    ElectricityMapsConfig {
        target,
        token_env,
        region_map,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, from_toml_str};
    use super::*;

    #[test]
    fn defaults_score_with_no_scraper() {
        let c = from_toml_str("", "t").unwrap().green_settings;
        assert_eq!(c, GreenConfig::default());
        assert!(c.enabled);
        assert_eq!(c.embodied_carbon_per_request_gco2, 0.001);
    }

    #[test]
    fn every_scraper_reads_its_keys_and_defaults() {
        let text = r#"
[green]
enabled = true
default_region = "eu-west-3"
embodied_carbon_per_request_gco2 = 0.002
service_regions = { billing = "us-east-1" }

[green.scaphandre]
endpoint = "http://scaphandre:8080/metrics"
process_map = { orders = "orders-api" }

[green.kepler]
endpoint = "http://kepler:9102/metrics"
metric_kind = "process"
service_mappings = { orders = "orders-api" }

[green.redfish]
endpoint = "https://bmc-1/redfish/v1/Chassis/1/Power"
services = ["orders"]
auth_header = "env:BMC_AUTH"

[green.cloud]
endpoint = "http://prometheus:9090"
query = "avg by (service) (rate(cpu_seconds_total[1m]))"
default_instance_type = "m5.large"

[green.electricity_maps]
region_map = { "eu-west-3" = "FR" }
"#;
        let c = from_toml_str(text, "t").unwrap().green_settings;
        assert_eq!(c.service_regions["billing"], "us-east-1");
        let s = c.scaphandre.unwrap();
        assert_eq!(s.target.interval, Duration::from_secs(5));
        assert_eq!(s.target.timeout, Duration::from_secs(5));
        assert_eq!(s.target.max_body_bytes, 4 << 20);
        assert_eq!(c.kepler.unwrap().metric_kind, KeplerKind::Process);
        let r = c.redfish.unwrap();
        assert_eq!(r.target.interval, Duration::from_secs(60));
        assert_eq!(
            r.chassis,
            [Chassis {
                endpoint: "https://bmc-1/redfish/v1/Chassis/1/Power".into(),
                services: vec!["orders".into()]
            }]
        );
        assert_eq!(r.target.auth_header_env.as_deref(), Some("BMC_AUTH"));
        let cloud = c.cloud.unwrap();
        assert_eq!(cloud.service_label, "service");
        let e = c.electricity_maps.unwrap();
        assert_eq!(e.target.endpoint, "https://api.electricitymap.org/v3");
        assert_eq!(e.target.interval, Duration::from_secs(300));
        assert_eq!(e.token_env, EMAPS_TOKEN_VAR);
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let text = r#"
[green]
enabled = "yes"
embodied_carbon_per_request_gco2 = -1

[green.scaphandre]
endpoint = "ftp://scaphandre/metrics"
scrape_interval_secs = 0
process_map = { orders = 3 }

[green.redfish]
endpoint = "https://bmc/redfish/v1/Chassis/1/Power"
services = ["orders"]
scrape_interval_secs = 5

[green.cloud]
endpoint = "not a url"
query = "up"
default_instance_type = "z9.huge"

[green.electricity_maps]
poll_interval_secs = 10
region_map = {}
colour = "green"
"#;
        let problems = match from_toml_str(text, "green.toml") {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected refusal, got {other:?}"),
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "green.enabled",
            "green.embodied_carbon_per_request_gco2",
            "green.scaphandre.endpoint",
            "green.scaphandre.scrape_interval_secs",
            "green.scaphandre.process_map.orders",
            "green.redfish.scrape_interval_secs",
            "green.cloud.endpoint",
            "green.cloud.default_instance_type",
            "green.electricity_maps.poll_interval_secs",
            "green.electricity_maps.region_map",
            "green.electricity_maps.colour",
        ] {
            assert!(keys.contains(&key), "{key} missing from {problems:#?}");
        }
        let shown = ConfigError::Invalid(problems).to_string();
        assert!(shown.contains("green.toml: `green.redfish.scrape_interval_secs`: must be between 15 and 3600, got 5"), "{shown}");
    }

    #[test]
    fn redfish_reads_several_chassis_through_service_mappings() {
        let text = r#"
[green.redfish]
endpoint = "https://bmc-0/redfish/v1/Chassis/1/Power"
services = ["gateway"]
service_mappings = { orders = "https://bmc-1/redfish/v1/Chassis/1/Power", stock = "https://bmc-1/redfish/v1/Chassis/1/Power", pay = "https://bmc-2/redfish/v1/Chassis/Self/EnvironmentMetrics" }
"#;
        let r = from_toml_str(text, "t")
            .unwrap()
            .green_settings
            .redfish
            .unwrap();
        let got: Vec<(&str, Vec<&str>)> = r
            .chassis
            .iter()
            .map(|c| {
                (
                    c.endpoint.as_str(),
                    c.services.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("https://bmc-0/redfish/v1/Chassis/1/Power", vec!["gateway"]),
                (
                    "https://bmc-1/redfish/v1/Chassis/1/Power",
                    vec!["orders", "stock"]
                ),
                (
                    "https://bmc-2/redfish/v1/Chassis/Self/EnvironmentMetrics",
                    vec!["pay"]
                ),
            ]
        );
        // Mappings alone are enough; the first chassis is the one logged.
        let text = "[green.redfish]\nservice_mappings = { a = \"https://bmc-9/x\" }\n";
        let r = from_toml_str(text, "t")
            .unwrap()
            .green_settings
            .redfish
            .unwrap();
        assert_eq!(r.target.endpoint, "https://bmc-9/x");
        for (text, needle) in [
            (
                "[green.redfish]\nservices = [\"a\"]\n",
                "`green.redfish.services`: needs `endpoint`",
            ),
            (
                "[green.redfish]\nscrape_interval_secs = 60\n",
                "`green.redfish.endpoint`: is required",
            ),
            (
                "[green.redfish]\nservice_mappings = { a = \"ftp://bmc/x\" }\n",
                "`green.redfish.service_mappings`: `a`: must be an http",
            ),
        ] {
            let e = from_toml_str(text, "t").unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
