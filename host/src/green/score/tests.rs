use std::time::Duration;

use detector_api::testkit::{SpanSpec, TraceBuilder};
use detector_api::{Severity, TraceId};

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b.abs() * 1e-12
}

fn config(toml: &str) -> GreenConfig {
    crate::config::from_toml_str(toml, "t.toml")
        .unwrap()
        .green_settings
}

/// The trace of docs/ENERGY.md's worked example: `orders` in `eu-west-3`
/// loads an order, then its 12 items one by one, writes an audit row and
/// calls the pricing service (a 20 KB answer).
fn worked_example_trace() -> TraceBuilder {
    let mut t = TraceBuilder::with_id(TraceId([7; 16]));
    let root = t.root(SpanSpec::server("GET", "/orders/{id}").service("orders"));
    for i in 0..12 {
        t.child(
            root,
            SpanSpec::sql(
                "SELECT * FROM order_items WHERE order_id = ?",
                &i.to_string(),
            )
            .service("orders"),
        );
    }
    t.child(
        root,
        SpanSpec::sql("INSERT INTO audit (order_id) VALUES (?)", "1").service("orders"),
    );
    let mut http = SpanSpec::http_client("GET", "pricing/quote", "").service("orders");
    http.response_bytes = Some(20 * 1024);
    t.child(root, http);
    t
}

fn n_plus_one() -> Finding {
    Finding::new("n_plus_one_sql", Severity::Critical, TraceId([7; 16]))
        .template("SELECT * FROM order_items WHERE order_id = ?")
        .service("orders")
        .endpoint("GET /orders/{id}")
        .occurrences(12, 12)
        .avoidable_io(11)
}

#[test]
fn the_worked_example_of_the_energy_guide() {
    let scorer = GreenScorer::new(
        &config("[green]\ndefault_region = \"eu-west-3\"\n"),
        Arc::new(EnergyState::new()),
    );
    // Finding: 11 avoidable SELECTs x 1e-7 kWh x 0.5 = 5.5e-7 kWh (IT),
    // x PUE 1.135 = 6.2425e-7 kWh, x 51 g/kWh = 3.183675e-5 g.
    let t = worked_example_trace();
    let impact = t.with_view(|v| scorer.score_finding(&n_plus_one(), Some(v)));
    assert!(close(impact.energy_kwh, 6.2425e-7), "{impact:?}");
    assert!(close(impact.co2_gco2, 3.183675e-5), "{impact:?}");
    assert!(close(impact.co2_gco2 * LOW_FACTOR, 1.5918375e-5));
    assert!(close(impact.co2_gco2 * HIGH_FACTOR, 6.36735e-5));
    assert_eq!(impact.region, "eu-west-3");
    assert_eq!(impact.gco2_per_kwh, 51.0);
    assert_eq!(impact.energy_source, "proxy");
    // Trace: (12 x 0.5 + 1.5 + 1.2) x 1e-7 = 8.7e-7 kWh, x 1.135 =
    // 9.8745e-7 kWh, x 51 = 5.035995e-5 g, + 0.001 g embodied.
    let trace = t.with_view(|v| scorer.score_trace(v));
    assert!(close(trace.io_kwh, 9.8745e-7), "{trace:?}");
    assert!(close(trace.io_gco2, 0.001 + 5.035995e-5), "{trace:?}");
}

#[test]
fn the_region_comes_from_the_span_then_the_service_then_the_default() {
    let scorer = GreenScorer::new(
        &config(
            "[green]\ndefault_region = \"eu-west-3\"\n[green.service_regions]\norders = \"eu-north-1\"\n",
        ),
        Arc::new(EnergyState::new()),
    );
    let t = worked_example_trace();
    let f = n_plus_one();
    let by_service = t.with_view(|v| scorer.score_finding(&f, Some(v)));
    assert_eq!(by_service.region, "eu-north-1");
    let mut t2 = worked_example_trace();
    t2.span_mut(1)
        .attributes
        .push(("cloud.region".into(), "us-east-1".into()));
    let f2 = f.clone().evidence([TraceBuilder::span_id(1)]);
    let by_span = t2.with_view(|v| scorer.score_finding(&f2, Some(v)));
    assert_eq!(by_span.region, "us-east-1");
    assert_eq!(by_span.gco2_per_kwh, 379.0);
    let other = f.clone().service("billing");
    let by_default = scorer.score_finding(&other, None);
    assert_eq!(by_default.region, "eu-west-3");
    let none = GreenScorer::new(&config(""), Arc::new(EnergyState::new()));
    let unknown = none.score_finding(&f, None);
    assert_eq!(unknown.region, "unknown");
    assert_eq!(unknown.gco2_per_kwh, WORLD.gco2_per_kwh);
    assert!(close(unknown.energy_kwh, 5.5e-7 * 1.58));
}

#[test]
fn measured_energy_replaces_the_proxy_while_fresh() {
    let state = Arc::new(EnergyState::new());
    let scorer = GreenScorer::new(
        &config("[green]\ndefault_region = \"eu-west-3\"\n"),
        state.clone(),
    );
    let interval = Duration::from_secs(10);
    state.configure("kepler", "http://kepler:9102".into(), interval);
    let t0 = Instant::now();
    state.set_measured("kepler", [("orders".to_owned(), 4e-7)], t0);
    state.configure("electricity_maps", "https://api".into(), interval);
    state.set_grid("electricity_maps", [("eu-west-3".to_owned(), 80.0)], t0);
    let f = n_plus_one();
    let m = scorer.score_finding_at(&f, None, t0 + interval);
    assert_eq!(m.energy_source, "measured:kepler");
    assert!(close(m.energy_kwh, 11.0 * 4e-7 * 1.135), "{m:?}");
    assert_eq!(m.gco2_per_kwh, 80.0);
    // Three intervals missed: proxy and table again.
    let stale = scorer.score_finding_at(&f, None, t0 + interval * 3 + Duration::from_secs(1));
    assert_eq!(stale.energy_source, "proxy");
    assert!(close(stale.energy_kwh, 6.2425e-7));
    assert_eq!(stale.gco2_per_kwh, 51.0);
}

#[test]
fn a_trace_mixing_services_and_regions_adds_each_operation_at_its_own_rate() {
    let state = Arc::new(EnergyState::new());
    let scorer = GreenScorer::new(
        &config(
            "[green]\ndefault_region = \"eu-west-3\"\nembodied_carbon_per_request_gco2 = 0\n[green.service_regions]\nbilling = \"us-east-1\"\n",
        ),
        state.clone(),
    );
    state.configure("kepler", "http://k".into(), Duration::from_secs(60));
    state.set_measured("kepler", [("billing".to_owned(), 1e-6)], Instant::now());
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/checkout").service("orders"));
    // orders, eu-west-3 (51 g, PUE 1.135): one SELECT, proxy.
    t.child(root, SpanSpec::sql("SELECT 1", "").service("orders"));
    // orders, but this span says GCP europe-west9 (59 g, PUE 1.1).
    t.child(
        root,
        SpanSpec::sql("DELETE FROM carts WHERE id = ?", "1")
            .service("orders")
            .attr("cloud.region", "europe-west9"),
    );
    // billing, us-east-1 (379 g, PUE 1.135): two calls, measured 1e-6 kWh each.
    t.child(
        root,
        SpanSpec::http_client("POST", "pay/charge", "").service("billing"),
    );
    t.child(
        root,
        SpanSpec::http_client("POST", "pay/charge", "").service("billing"),
    );
    let e = t.with_view(|v| scorer.score_trace(v));
    let kwh = [
        1e-7 * 0.5 * 1.135,
        1e-7 * 1.2 * 1.1,
        1e-6 * 1.135,
        1e-6 * 1.135,
    ];
    let g = [kwh[0] * 51.0, kwh[1] * 59.0, kwh[2] * 379.0, kwh[3] * 379.0];
    assert!(close(e.io_kwh, kwh.iter().sum()), "{e:?}");
    assert!(close(e.io_gco2, g.iter().sum()), "{e:?}");
}
