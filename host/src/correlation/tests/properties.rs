//! Properties of the correlator on random streams: its counts against a
//! brute-force reading of the definition, and its bounds under eviction.

use std::collections::BTreeMap;

use detector_api::TraceId;
use prometheus_client::metrics::counter::Counter;
use proptest::prelude::*;

use crate::correlation::{CorrelationConfig, Correlator, FindingEvent};

const T0: u64 = 1_700_000_040_000_000_000;

fn event(sig: u8, at_ms: u64) -> FindingEvent {
    FindingEvent {
        signature: format!("s{sig}").into(),
        kind: "k".into(),
        // Signatures 0 and 3 share a service, and so on.
        service: format!("svc{}", sig % 3).into(),
        at_ns: T0 + at_ms * 1_000_000,
        trace_id: TraceId([sig; 16]),
    }
}

fn correlator(max_tracked_pairs: usize) -> Correlator {
    let config = CorrelationConfig {
        enabled: true,
        min_co_occurrences: 1,
        min_confidence: 0.0,
        max_tracked_pairs,
        ..CorrelationConfig::default()
    };
    Correlator::new(config, Counter::default())
}

type Counts = BTreeMap<(String, String), (u64, u64)>;

/// The definition, by brute force: each leader occurrence counts once
/// per follower signature that starts 0..=lag after it elsewhere.
fn oracle(events: &[(u8, u64)], lag_ms: u64) -> Counts {
    let mut occurrences = BTreeMap::new();
    for &(sig, _) in events {
        *occurrences.entry(sig).or_insert(0u64) += 1;
    }
    let mut co: BTreeMap<(u8, u8), u64> = BTreeMap::new();
    for &(a, at) in events {
        let mut followers: Vec<u8> = events
            .iter()
            .filter(|&&(b, bt)| a % 3 != b % 3 && bt >= at && bt - at <= lag_ms)
            .map(|&(b, _)| b)
            .collect();
        followers.sort_unstable();
        followers.dedup();
        for b in followers {
            *co.entry((a, b)).or_default() += 1;
        }
    }
    co.into_iter()
        .map(|((a, b), n)| ((format!("s{a}"), format!("s{b}")), (n, occurrences[&a])))
        .collect()
}

proptest! {
    #[test]
    fn counts_match_the_definition_in_any_arrival_order(
        events in proptest::collection::vec((0u8..6, 0u64..20_000), 0..60)
    ) {
        let mut c = correlator(1_000);
        for &(sig, at) in &events {
            c.observe(event(sig, at));
        }
        let got: Counts = c
            .snapshot(T0 + 60_000_000_000)
            .into_iter()
            .map(|f| {
                ((f.leader.signature, f.follower.signature), (f.co_occurrences, f.leader_occurrences))
            })
            .collect();
        prop_assert_eq!(got, oracle(&events, 2_000));
    }

    #[test]
    fn under_eviction_counts_stay_consistent_and_bounded(
        cap in 1usize..6,
        events in proptest::collection::vec((0u8..6, 0u64..20_000), 0..80)
    ) {
        let mut c = correlator(cap);
        for &(sig, at) in &events {
            c.observe(event(sig, at));
            prop_assert!(c.tracked_pairs() <= cap && c.tracked_signatures() <= cap);
        }
        let found = c.snapshot(T0 + 60_000_000_000);
        for f in &found {
            prop_assert!(f.co_occurrences >= 1 && f.co_occurrences <= f.leader_occurrences);
            prop_assert!(f.confidence <= 1.0);
        }
        for w in found.windows(2) {
            prop_assert!(w[0].confidence >= w[1].confidence);
        }
    }
}
