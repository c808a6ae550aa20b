//! The scrapers' polling, owned by the host: one tokio task per configured
//! backend, ticking at its interval until shutdown. A scrape fetches
//! (timeout, body cap, no redirects), hands the body to the backend's pure
//! parser, and turns the reading into energy per I/O operation of each
//! service over the window since the previous scrape (or into grid
//! intensity per region), stored in the shared [`EnergyState`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use reqwest::header::{AUTHORIZATION, HeaderName};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Fetcher, redact};
use super::{ScrapeError, cloud, electricity_maps, kepler, redfish, scaphandre};
use crate::config::{GreenConfig, ScrapeTarget};
use crate::green::instances;
use crate::green::state::{BackendName, EnergyState};

/// Cumulative outbound I/O operations of a service (the pipeline's count).
pub type OpsSource = Arc<dyn Fn(&str) -> u64 + Send + Sync>;

const JOULES_PER_KWH: f64 = 3.6e6;

/// What one scrape measured.
enum Reading {
    /// Watts per service now.
    Power(BTreeMap<String, f64>),
    /// Watts of machines, each shared by its services.
    SharedPower(Vec<(Vec<String>, f64)>),
    /// Joules per service since the previous scrape.
    Energy(BTreeMap<String, f64>),
    /// gCO2/kWh per region.
    Grid(BTreeMap<String, f64>),
}

/// Turns power and energy readings into energy per operation.
struct Window {
    ops: OpsSource,
    last: Option<(Instant, HashMap<String, u64>)>,
}

impl Window {
    /// kWh per op of each service whose operations moved in the window.
    fn per_op(&mut self, reading: &Reading, now: Instant) -> Vec<(String, f64)> {
        let services: Vec<&str> = match reading {
            Reading::Power(m) | Reading::Energy(m) => m.keys().map(String::as_str).collect(),
            Reading::SharedPower(machines) => machines
                .iter()
                .flat_map(|(services, _)| services.iter().map(String::as_str))
                .collect(),
            Reading::Grid(_) => return Vec::new(),
        };
        let counts: HashMap<String, u64> = services
            .iter()
            .map(|s| ((*s).to_owned(), (self.ops)(s)))
            .collect();
        let previous = self.last.replace((now, counts.clone()));
        let Some((then, before)) = previous else {
            return Vec::new();
        };
        let seconds = now.saturating_duration_since(then).as_secs_f64();
        let delta = |s: &str| counts[s].saturating_sub(before.get(s).copied().unwrap_or(counts[s]));
        let mut out = Vec::new();
        match reading {
            Reading::Power(watts) => {
                for (s, w) in watts {
                    let ops = delta(s);
                    if ops > 0 {
                        out.push((s.clone(), w * seconds / JOULES_PER_KWH / ops as f64));
                    }
                }
            }
            Reading::Energy(joules) => {
                for (s, j) in joules {
                    let ops = delta(s);
                    if ops > 0 {
                        out.push((s.clone(), j / JOULES_PER_KWH / ops as f64));
                    }
                }
            }
            Reading::SharedPower(machines) => {
                for (services, watts) in machines {
                    let ops: u64 = services.iter().map(|s| delta(s)).sum();
                    if ops > 0 {
                        let per_op = watts * seconds / JOULES_PER_KWH / ops as f64;
                        out.extend(services.iter().map(|s| (s.clone(), per_op)));
                    }
                }
            }
            Reading::Grid(_) => {}
        }
        out
    }
}

/// One backend's scrape: fetch and parse.
enum Job {
    Scaphandre(crate::config::ScaphandreConfig),
    Kepler(crate::config::KeplerConfig, kepler::Deltas),
    Redfish(crate::config::RedfishConfig),
    Cloud(crate::config::CloudConfig),
    ElectricityMaps(crate::config::ElectricityMapsConfig, bool),
}

const PROM_ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

impl Job {
    async fn scrape(
        &mut self,
        fetcher: &Fetcher,
        target: &ScrapeTarget,
    ) -> Result<Reading, ScrapeError> {
        match self {
            Job::Scaphandre(c) => {
                let body = fetcher.get(&target.endpoint, PROM_ACCEPT).await?;
                let text = std::str::from_utf8(&body).map_err(|_| ScrapeError::NotUtf8)?;
                Ok(Reading::Power(scaphandre::parse(text, &c.process_map)?))
            }
            Job::Kepler(c, deltas) => {
                let body = fetcher.get(&target.endpoint, PROM_ACCEPT).await?;
                let text = std::str::from_utf8(&body).map_err(|_| ScrapeError::NotUtf8)?;
                let counters = kepler::parse(text, c.metric_kind, &c.service_mappings)?;
                Ok(Reading::Energy(deltas.update(counters)))
            }
            Job::Redfish(c) => {
                // One failing chassis fails the scrape: the previous
                // figures stay in use until they go stale, and the failure
                // shows in the backend's health with its reason.
                let mut machines = Vec::with_capacity(c.chassis.len());
                for chassis in &c.chassis {
                    let body = fetcher.get(&chassis.endpoint, "application/json").await?;
                    machines.push((chassis.services.clone(), redfish::parse(&body)?));
                }
                Ok(Reading::SharedPower(machines))
            }
            Job::Cloud(c) => {
                let mut url = reqwest::Url::parse(&target.endpoint)
                    .map_err(|e| super::ParseError::Invalid(e.to_string()))?;
                url.path_segments_mut()
                    .map_err(|()| super::ParseError::Invalid("endpoint cannot be a base".into()))?
                    .pop_if_empty()
                    .extend(["api", "v1", "query"]);
                url.query_pairs_mut().append_pair("query", &c.query);
                let body = fetcher.get(url.as_str(), "application/json").await?;
                let cpu = cloud::parse(&body, &c.service_label)?;
                let watts = cpu
                    .into_iter()
                    .filter_map(|(service, cpu)| {
                        let it = c
                            .instance_types
                            .get(&service)
                            .or(c.default_instance_type.as_ref())?;
                        Some((service, instances::watts(it, cpu)?))
                    })
                    .collect();
                Ok(Reading::Power(watts))
            }
            Job::ElectricityMaps(c, has_token) => {
                if !*has_token {
                    return Err(ScrapeError::NoToken(c.token_env.clone()));
                }
                let mut grid = BTreeMap::new();
                for (region, zone) in &c.region_map {
                    let url = electricity_maps::latest_url(&target.endpoint, zone);
                    let body = fetcher.get(&url, "application/json").await?;
                    grid.insert(region.clone(), electricity_maps::parse(&body, zone)?);
                }
                Ok(Reading::Grid(grid))
            }
        }
    }
}

/// Headers a backend sends on every request.
type Headers = Vec<(HeaderName, String)>;

/// Reads an environment variable (the process environment in the daemon).
pub type EnvReader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Starts one polling task per configured backend; they end when
/// `shutdown` is cancelled. Credentials come from `read_env`.
pub fn spawn_scrapers(
    config: &GreenConfig,
    state: Arc<EnergyState>,
    ops: OpsSource,
    shutdown: CancellationToken,
    read_env: EnvReader<'_>,
) -> Vec<JoinHandle<()>> {
    if !config.enabled {
        return Vec::new();
    }
    let env = |var: &Option<String>| var.as_deref().and_then(read_env);
    let mut jobs: Vec<(BackendName, ScrapeTarget, Job, Headers)> = Vec::new();
    let auth = |t: &ScrapeTarget| {
        env(&t.auth_header_env)
            .map(|v| vec![(AUTHORIZATION, v)])
            .unwrap_or_default()
    };
    if let Some(c) = &config.scaphandre {
        jobs.push((
            "scaphandre",
            c.target.clone(),
            Job::Scaphandre(c.clone()),
            auth(&c.target),
        ));
    }
    if let Some(c) = &config.kepler {
        jobs.push((
            "kepler",
            c.target.clone(),
            Job::Kepler(c.clone(), kepler::Deltas::default()),
            auth(&c.target),
        ));
    }
    if let Some(c) = &config.redfish {
        jobs.push((
            "redfish",
            c.target.clone(),
            Job::Redfish(c.clone()),
            auth(&c.target),
        ));
    }
    if let Some(c) = &config.cloud {
        jobs.push((
            "cloud",
            c.target.clone(),
            Job::Cloud(c.clone()),
            auth(&c.target),
        ));
    }
    if let Some(c) = &config.electricity_maps {
        let token = read_env(&c.token_env).filter(|t| !t.is_empty());
        let headers = token
            .clone()
            .map(|t| vec![(HeaderName::from_static("auth-token"), t)])
            .unwrap_or_default();
        if token.is_none() {
            tracing::warn!(
                backend = "electricity_maps",
                variable = %c.token_env,
                "no Electricity Maps token: the variable is unset or empty; grid intensity stays on the embedded table"
            );
        }
        jobs.push((
            "electricity_maps",
            c.target.clone(),
            Job::ElectricityMaps(c.clone(), token.is_some()),
            headers,
        ));
    }
    let mut handles = Vec::new();
    for (backend, target, job, headers) in jobs {
        let endpoint = redact(&target.endpoint);
        state.configure(backend, endpoint.clone(), target.interval);
        let fetcher = match Fetcher::new(target.timeout, target.max_body_bytes, headers) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(backend, endpoint = %endpoint, "energy scraper not started: {e}");
                state.scrape_failed(backend, e.reason(), e.to_string());
                continue;
            }
        };
        let task = Poller {
            backend,
            endpoint,
            target,
            job,
            fetcher,
            state: state.clone(),
            window: Window {
                ops: ops.clone(),
                last: None,
            },
        };
        handles.push(tokio::spawn(task.run(shutdown.clone())));
    }
    handles
}

struct Poller {
    backend: BackendName,
    endpoint: String,
    target: ScrapeTarget,
    job: Job,
    fetcher: Fetcher,
    state: Arc<EnergyState>,
    window: Window,
}

impl Poller {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.target.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(
            backend = self.backend,
            endpoint = %self.endpoint,
            interval_secs = self.target.interval.as_secs(),
            "energy scraper started"
        );
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let result = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.job.scrape(&self.fetcher, &self.target) => r,
            };
            let now = Instant::now();
            match result {
                Ok(reading) => {
                    let covered = self.record(&reading, now);
                    self.state.scrape_ok(self.backend, covered, now);
                    if failing {
                        tracing::info!(backend = self.backend, endpoint = %self.endpoint, "energy scraper recovered");
                    }
                    failing = false;
                }
                Err(e) => {
                    let message = e.to_string();
                    // Logged once per failing streak; the counters keep the rest.
                    if !failing {
                        tracing::warn!(
                            backend = self.backend,
                            endpoint = %self.endpoint,
                            reason = e.reason(),
                            "energy scrape failed: {message}; measured figures fall back to the model after {} missed intervals",
                            crate::green::state::MISSED_INTERVALS
                        );
                    }
                    failing = true;
                    self.state.scrape_failed(self.backend, e.reason(), message);
                }
            }
        }
    }

    fn record(&mut self, reading: &Reading, now: Instant) -> Vec<String> {
        if let Reading::Grid(grid) = reading {
            self.state
                .set_grid(self.backend, grid.iter().map(|(r, g)| (r.clone(), *g)), now);
            return grid.keys().cloned().collect();
        }
        let per_op = self.window.per_op(reading, now);
        let covered = per_op.iter().map(|(s, _)| s.clone()).collect();
        self.state.set_measured(self.backend, per_op, now);
        covered
    }
}

/// A timeout long enough for tests to wait on a scrape.
#[cfg(test)]
pub(crate) const TEST_WAIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests;
