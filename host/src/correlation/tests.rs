mod properties;

use std::sync::Arc;

use detector_api::{Finding, Severity, TraceId};
use prometheus_client::metrics::counter::Counter;

use super::*;
use crate::findings::{Stamp, confidence_for};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const MIN: u64 = 60 * SEC;
/// A whole minute (2023-11-14T22:14:00Z), so slices start on it.
const T0: u64 = 28_333_334 * MIN;

fn event(signature: &str, service: &str, at_ns: u64, trace: u8) -> FindingEvent {
    FindingEvent {
        signature: signature.into(),
        kind: "n_plus_one_sql".into(),
        service: service.into(),
        at_ns,
        trace_id: TraceId([trace; 16]),
    }
}

fn config(min_co_occurrences: u32) -> CorrelationConfig {
    CorrelationConfig {
        enabled: true,
        min_co_occurrences,
        ..CorrelationConfig::default()
    }
}

fn correlator(config: CorrelationConfig) -> Correlator {
    Correlator::new(config, Counter::default())
}

/// `n` times, 20 s apart from `start`: `leader` in billing, then `follower`
/// in checkout `lag_ms` later, each in its own trace.
fn repeat(c: &mut Correlator, start: u64, n: u64, lag_ms: u64) {
    for i in 0..n {
        let t = start + i * 20 * SEC;
        c.observe(event("A", "billing", t, (2 * i) as u8));
        c.observe(event("B", "checkout", t + lag_ms * MS, (2 * i + 1) as u8));
    }
}

fn pairs(found: &[Correlation]) -> Vec<(&str, &str)> {
    found
        .iter()
        .map(|c| (c.leader.signature.as_str(), c.follower.signature.as_str()))
        .collect()
}

#[test]
fn a_repeated_pattern_across_traces_is_reported() {
    let mut c = correlator(config(5));
    repeat(&mut c, T0, 1, 500);
    // A second follower occurrence after the same leader counts once.
    c.observe(event("B", "checkout", T0 + 900 * MS, 99));
    repeat(&mut c, T0 + 20 * SEC, 5, 500);
    let found = c.snapshot(T0 + 2 * MIN);
    assert_eq!(pairs(&found), [("A", "B")]);
    let json = serde_json::to_value(&found[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "leader": {"signature": "A", "kind": "n_plus_one_sql", "service": "billing"},
            "follower": {"signature": "B", "kind": "n_plus_one_sql", "service": "checkout"},
            "co_occurrences": 6,
            "leader_occurrences": 6,
            "confidence": 1.0,
            "median_lag_ms": 500,
            "first_seen": "2023-11-14T22:14:00Z",
            "last_seen": "2023-11-14T22:15:40Z",
        })
    );
}

#[test]
fn confidence_is_the_share_of_leader_occurrences_followed() {
    let mut c = correlator(config(5));
    repeat(&mut c, T0, 6, 500);
    // Four more leader occurrences nothing follows: 6 of 10.
    for i in 0..4 {
        c.observe(event("A", "billing", T0 + 3 * MIN + i * 20 * SEC, 50));
    }
    let found = c.snapshot(T0 + 5 * MIN);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].co_occurrences, found[0].leader_occurrences),
        (6, 10)
    );
    assert_eq!(found[0].confidence, 0.6);

    let mut strict = correlator(CorrelationConfig {
        min_confidence: 0.7,
        ..config(5)
    });
    repeat(&mut strict, T0, 6, 500);
    for i in 0..4 {
        strict.observe(event("A", "billing", T0 + 3 * MIN + i * 20 * SEC, 50));
    }
    assert!(strict.snapshot(T0 + 5 * MIN).is_empty());
}

#[test]
fn confidence_is_rounded_to_three_decimals() {
    let mut c = correlator(config(2));
    repeat(&mut c, T0, 2, 100);
    c.observe(event("A", "billing", T0 + MIN, 9));
    assert_eq!(c.snapshot(T0 + 2 * MIN)[0].confidence, 0.667);
}

#[test]
fn findings_of_the_same_service_are_not_paired() {
    let mut c = correlator(config(1));
    for i in 0..6 {
        let t = T0 + i * 20 * SEC;
        c.observe(event("A", "billing", t, 1));
        c.observe(event("B", "billing", t + 100 * MS, 2));
    }
    assert!(c.snapshot(T0 + 3 * MIN).is_empty());
    assert_eq!(c.tracked_pairs(), 0);
}

#[test]
fn followers_beyond_the_lag_are_not_paired_and_the_lag_itself_is() {
    let mut c = correlator(config(1));
    repeat(&mut c, T0, 6, 2_001);
    assert!(c.snapshot(T0 + 3 * MIN).is_empty());

    let mut c = correlator(config(1));
    repeat(&mut c, T0, 6, 2_000);
    let found = c.snapshot(T0 + 3 * MIN);
    assert_eq!(pairs(&found), [("A", "B")]);
    assert_eq!(found[0].median_lag_ms, 2_000);
}

#[test]
fn too_few_co_occurrences_are_not_reported() {
    let mut c = correlator(config(5));
    repeat(&mut c, T0, 4, 500);
    assert!(c.snapshot(T0 + 3 * MIN).is_empty());
    // The counts are kept: one more and it is reported.
    repeat(&mut c, T0 + 2 * MIN, 1, 500);
    assert_eq!(c.snapshot(T0 + 3 * MIN)[0].co_occurrences, 5);
}

#[test]
fn simultaneous_findings_lead_each_other() {
    let mut c = correlator(config(3));
    repeat(&mut c, T0, 3, 0);
    assert_eq!(pairs(&c.snapshot(T0 + MIN)), [("A", "B"), ("B", "A")]);
}

#[test]
fn co_occurrences_leave_with_the_window() {
    let mut c = correlator(config(5));
    repeat(&mut c, T0, 3, 500); // minute 0
    repeat(&mut c, T0 + 8 * MIN, 3, 700); // minute 8
    let found = c.snapshot(T0 + 10 * MIN);
    assert_eq!(found[0].co_occurrences, 6);
    assert_eq!(found[0].median_lag_ms, 600);
    // Minute 0 is out; the three left are below the minimum.
    assert!(c.snapshot(T0 + 11 * MIN + SEC).is_empty());
    // What is counted is what the window holds, lags included.
    let mut c2 = correlator(config(3));
    repeat(&mut c2, T0, 3, 500);
    repeat(&mut c2, T0 + 8 * MIN, 3, 700);
    let found = c2.snapshot(T0 + 11 * MIN + SEC);
    assert_eq!(
        (found[0].co_occurrences, found[0].leader_occurrences),
        (3, 3)
    );
    assert_eq!(found[0].median_lag_ms, 700);
    assert_eq!(found[0].first_seen, rfc3339(T0 + 8 * MIN));
    // Once everything is out, nothing is held.
    assert!(c2.snapshot(T0 + 30 * MIN).is_empty());
    assert_eq!((c2.tracked_pairs(), c2.tracked_signatures()), (0, 0));
    // Expiry is not eviction.
    assert_eq!(c2.evicted_total(), 0);
}

#[test]
fn the_least_recently_updated_pair_is_evicted_and_counted() {
    let evictions = Counter::default();
    let mut c = Correlator::new(
        CorrelationConfig {
            max_tracked_pairs: 3,
            ..config(1)
        },
        evictions.clone(),
    );
    c.observe(event("A", "a", T0, 1));
    c.observe(event("B", "b", T0 + MS, 2)); // A -> B
    c.observe(event("C", "c", T0 + 2 * MS, 3)); // A -> C, B -> C
    assert_eq!((c.tracked_pairs(), evictions.get()), (3, 0));
    c.observe(event("C", "c", T0 + 10 * SEC, 4));
    c.observe(event("B", "b", T0 + 10 * SEC + MS, 5)); // C -> B evicts A -> B
    assert_eq!((c.tracked_pairs(), c.evicted_total()), (3, 1));
    let found = c.snapshot(T0 + MIN);
    assert_eq!(pairs(&found), [("A", "C"), ("B", "C"), ("C", "B")]);
}

#[test]
fn memory_stays_bounded_under_many_distinct_signatures() {
    let mut c = correlator(CorrelationConfig {
        max_tracked_pairs: 16,
        ..config(1)
    });
    for i in 0..3_000u64 {
        let sig = format!("sig-{}", i % 300);
        c.observe(event(&sig, &format!("svc-{}", i % 50), T0 + i * 10 * MS, 0));
        assert!(c.tracked_pairs() <= 16 && c.tracked_signatures() <= 16);
    }
    assert!(c.evicted_total() > 0);
    assert!(c.buffered_events() <= MAX_RECENT_EVENTS);
    for found in c.snapshot(T0 + 30 * SEC) {
        assert!(found.co_occurrences <= found.leader_occurrences);
    }
}

#[test]
fn the_recent_buffer_is_capped() {
    // No lag: nothing matches, so this is about the buffer alone.
    let mut c = correlator(CorrelationConfig {
        lag_threshold_ms: 0,
        ..config(1)
    });
    for i in 0..(MAX_RECENT_EVENTS as u64 + 500) {
        c.observe(event("A", "a", T0 + i * 1_000, 0));
    }
    assert_eq!(c.buffered_events(), MAX_RECENT_EVENTS);
}

#[test]
fn ordering_is_by_confidence_then_count_then_signatures_whatever_the_arrival() {
    // Four patterns 2.5 s apart, so only their own findings pair up:
    // (leader, follower, repetitions, extra unfollowed leader occurrences).
    let patterns = [
        ("X", "Y", 5, 0),
        ("P", "Q", 7, 0),
        ("A", "B", 8, 2),
        ("M", "N", 5, 0),
    ];
    let mut events = Vec::new();
    for (k, (leader, follower, reps, extra)) in patterns.into_iter().enumerate() {
        let offset = T0 + k as u64 * 2_500 * MS;
        for i in 0..reps + extra {
            let t = offset + i * 10 * SEC;
            events.push(event(leader, &format!("{leader}-svc"), t, 1));
            if i < reps {
                events.push(event(follower, &format!("{follower}-svc"), t + 100 * MS, 2));
            }
        }
    }
    let expected = [("P", "Q"), ("M", "N"), ("X", "Y"), ("A", "B")];
    let mut forward = correlator(config(5));
    for e in events.iter().cloned() {
        forward.observe(e);
    }
    let mut backward = correlator(config(5));
    for e in events.into_iter().rev() {
        backward.observe(e);
    }
    let (forward, backward) = (
        forward.snapshot(T0 + 3 * MIN),
        backward.snapshot(T0 + 3 * MIN),
    );
    assert_eq!(pairs(&forward), expected);
    assert_eq!(forward, backward);
    assert_eq!(forward[3].confidence, 0.8);
}

#[test]
fn late_findings_are_matched_both_ways() {
    let mut c = correlator(config(5));
    for i in 0..5 {
        let t = T0 + i * 20 * SEC;
        // The follower's trace completes first.
        c.observe(event("B", "checkout", t + 300 * MS, 1));
        c.observe(event("A", "billing", t, 2));
        // And a leader slightly older than one already seen.
        c.observe(event("C", "search", t + 400 * MS, 3));
        c.observe(event("D", "ledger", t + 350 * MS, 4));
    }
    let found = c.snapshot(T0 + 2 * MIN);
    for (leader, follower) in [
        ("A", "B"),
        ("A", "C"),
        ("A", "D"),
        ("B", "C"),
        ("B", "D"),
        ("D", "C"),
    ] {
        let pair = found
            .iter()
            .find(|f| {
                (f.leader.signature.as_str(), f.follower.signature.as_str()) == (leader, follower)
            })
            .unwrap_or_else(|| panic!("{leader} -> {follower} missing"));
        assert_eq!((pair.co_occurrences, pair.leader_occurrences), (5, 5));
    }
    assert_eq!(found.len(), 6);
}

#[test]
fn a_finding_older_than_its_signatures_window_is_ignored() {
    let mut c = correlator(config(1));
    c.observe(event("A", "billing", T0 + 20 * MIN, 1));
    c.observe(event("A", "billing", T0, 2));
    c.observe(event("B", "checkout", T0 + 100 * MS, 3));
    assert_eq!(c.tracked_pairs(), 0);
    assert!(c.snapshot(T0 + 20 * MIN).is_empty());
}

#[test]
fn a_reappearing_evicted_signature_never_claims_its_old_pairs() {
    let mut c = correlator(CorrelationConfig {
        max_tracked_pairs: 2,
        ..config(1)
    });
    repeat(&mut c, T0, 3, 100);
    // A third signature evicts A; A seen again starts from nothing.
    c.observe(event("C", "search", T0 + 2 * MIN, 1));
    c.observe(event("A", "billing", T0 + 3 * MIN, 1));
    for found in c.snapshot(T0 + 4 * MIN) {
        assert!(
            found.co_occurrences <= found.leader_occurrences,
            "{found:?}"
        );
    }
    assert!(c.evicted_total() >= 1);
}

#[test]
fn an_event_comes_from_a_finding_record() {
    let finding = Finding::new("slow_sql", Severity::Warning, TraceId([7; 16]))
        .service("billing")
        .endpoint("POST /pay")
        .template("SELECT 1")
        .timing(T0, T0 + SEC, 0);
    let stamp = Stamp {
        environment: "staging".into(),
        confidence: confidence_for("staging"),
    };
    let record = FindingRecord::without_trace(finding, &"builtin".into(), &stamp);
    let e = FindingEvent::from(&record);
    assert_eq!(e.signature, Arc::from(record.signature.as_str()));
    assert_eq!(
        (&*e.kind, &*e.service, e.at_ns),
        ("slow_sql", "billing", T0)
    );
    assert_eq!(e.trace_id, TraceId([7; 16]));
}

#[test]
fn long_windows_use_longer_slices() {
    // A day in 60 slices of 24 minutes: a finding 23 hours old still counts.
    let mut c = correlator(CorrelationConfig {
        window_minutes: 24 * 60,
        ..config(3)
    });
    repeat(&mut c, T0, 3, 100);
    assert_eq!(c.snapshot(T0 + 23 * 60 * MIN).len(), 1);
    assert!(c.snapshot(T0 + 26 * 60 * MIN).is_empty());
}
