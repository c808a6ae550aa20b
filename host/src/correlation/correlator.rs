//! [`Correlator`]: the counting state behind correlations, fed one finding
//! at a time and read by snapshots. Not thread-safe by itself: the host owns
//! it behind a lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use hashlink::LinkedHashMap;
use prometheus_client::metrics::counter::Counter;

use super::buckets::Buckets;
use super::{
    CorrelatedFinding, Correlation, CorrelationConfig, FindingEvent, LAG_SAMPLES,
    MAX_FOLLOWERS_PER_EVENT, MAX_RECENT_EVENTS, REORDER_TOLERANCE_MS, rfc3339,
};

/// A signature's id, never reused: a signature evicted and seen again gets a
/// new one, so pairs counted under the old id cannot be mixed with occurrences
/// counted under the new one.
type SigId = u64;

const MINUTE_NS: u64 = 60_000_000_000;
/// Slices per window, at most: a long window gets longer slices.
const MAX_SLICES: u64 = 60;

struct Signature {
    name: Arc<str>,
    kind: Arc<str>,
    service: Arc<str>,
    occurrences: Buckets,
}

struct Pair {
    /// In the slice of the leader's timestamp, as its occurrences are.
    co_occurrences: Buckets,
    /// (leader timestamp, lag) of the latest co-occurrences.
    lags: VecDeque<(u64, u64)>,
}

/// A finding held for matching with those close to it in time.
struct Recent {
    at_ns: u64,
    sig: SigId,
    service: Arc<str>,
    /// The follower signatures this occurrence was counted as leading.
    led: Vec<SigId>,
}

/// Counts findings and their cross-service co-occurrences over a rolling
/// window (see the module documentation for the rules).
pub struct Correlator {
    config: CorrelationConfig,
    lag_ns: u64,
    window_ns: u64,
    slice_ns: u64,
    /// Slices kept per signature and pair: the window's, plus the one the
    /// window starts in.
    keep: u64,
    capacity: usize,
    next_id: SigId,
    ids: HashMap<Arc<str>, SigId>,
    /// Least recently seen first.
    signatures: LinkedHashMap<SigId, Signature>,
    /// (leader, follower), least recently updated first.
    pairs: LinkedHashMap<(SigId, SigId), Pair>,
    /// In timestamp order.
    recent: VecDeque<Recent>,
    evictions: Counter,
}

impl Correlator {
    /// An empty correlator. Out-of-range settings are clamped (a window of at
    /// least a minute, at least one pair); [`CorrelationConfig::validate`]
    /// is what refuses them. `evictions` counts pairs dropped to stay
    /// within `max_tracked_pairs`.
    pub fn new(config: CorrelationConfig, evictions: Counter) -> Self {
        let window_ns = config.window_minutes.max(1).saturating_mul(MINUTE_NS);
        let slice_ns = MINUTE_NS.max(window_ns.div_ceil(MAX_SLICES));
        let keep = window_ns.div_ceil(slice_ns) + 1;
        Self {
            lag_ns: config.lag_threshold_ms.saturating_mul(1_000_000),
            window_ns,
            slice_ns,
            keep,
            capacity: config.max_tracked_pairs.max(1),
            next_id: 0,
            ids: HashMap::new(),
            signatures: LinkedHashMap::new(),
            pairs: LinkedHashMap::new(),
            recent: VecDeque::new(),
            evictions,
            config,
        }
    }

    /// Pairs dropped to stay within `max_tracked_pairs` since start.
    pub fn evicted_total(&self) -> u64 {
        self.evictions.get()
    }

    /// Pairs held now.
    pub fn tracked_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Signatures held now.
    pub fn tracked_signatures(&self) -> usize {
        self.signatures.len()
    }

    /// Findings held for matching now.
    pub fn buffered_events(&self) -> usize {
        self.recent.len()
    }

    /// Counts one finding and its co-occurrences with the findings near it
    /// in time. A finding older than its signature's window is ignored.
    pub fn observe(&mut self, event: FindingEvent) {
        let sig = self.signature_id(&event);
        let Some(state) = self.signatures.get_mut(&sig) else {
            return;
        };
        if !state.occurrences.add(event.at_ns, self.slice_ns, self.keep) {
            return;
        }
        let at = event.at_ns;

        // Match with the buffered findings within the lag either side.
        let lo = at.saturating_sub(self.lag_ns);
        let hi = at.saturating_add(self.lag_ns);
        let start = self.recent.partition_point(|r| r.at_ns < lo);
        let end = self.recent.partition_point(|r| r.at_ns <= hi);
        let mut led = Vec::new();
        let mut links = Vec::new();
        for other in self.recent.range_mut(start..end) {
            if other.service == event.service {
                continue;
            }
            if other.at_ns <= at && lead(&mut other.led, sig) {
                links.push((other.sig, sig, other.at_ns, at));
            }
            if at <= other.at_ns && lead(&mut led, other.sig) {
                links.push((sig, other.sig, at, other.at_ns));
            }
        }
        for (leader, follower, leader_ns, follower_ns) in links {
            self.link(leader, follower, leader_ns, follower_ns);
        }

        let pos = self.recent.partition_point(|r| r.at_ns <= at);
        self.recent.insert(
            pos,
            Recent {
                at_ns: at,
                sig,
                service: event.service,
                led,
            },
        );
        // Relative to this finding, not to the newest ever seen: one finding
        // with a far-future timestamp must not empty the buffer for good.
        let horizon =
            at.saturating_sub(self.lag_ns.saturating_add(REORDER_TOLERANCE_MS * 1_000_000));
        while self.recent.front().is_some_and(|r| r.at_ns < horizon)
            || self.recent.len() > MAX_RECENT_EVENTS
        {
            self.recent.pop_front();
        }
    }

    /// The signature's id, adding it (and evicting the least recently seen
    /// one beyond capacity) if new.
    fn signature_id(&mut self, event: &FindingEvent) -> SigId {
        if let Some(&id) = self.ids.get(&event.signature) {
            self.signatures.to_back(&id);
            return id;
        }
        if self.signatures.len() >= self.capacity
            && let Some((_, old)) = self.signatures.pop_front()
        {
            self.ids.remove(&old.name);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(event.signature.clone(), id);
        self.signatures.insert(
            id,
            Signature {
                name: event.signature.clone(),
                kind: event.kind.clone(),
                service: event.service.clone(),
                occurrences: Buckets::default(),
            },
        );
        id
    }

    /// Counts one co-occurrence.
    fn link(&mut self, leader: SigId, follower: SigId, leader_ns: u64, follower_ns: u64) {
        // A buffered finding may outlive its signature's eviction.
        if !self.signatures.contains_key(&leader) || !self.signatures.contains_key(&follower) {
            return;
        }
        let key = (leader, follower);
        if self.pairs.to_back(&key).is_none() {
            if self.pairs.len() >= self.capacity {
                self.pairs.pop_front();
                self.evictions.inc();
            }
            self.pairs.insert(
                key,
                Pair {
                    co_occurrences: Buckets::default(),
                    lags: VecDeque::new(),
                },
            );
        }
        let Some(pair) = self.pairs.get_mut(&key) else {
            return;
        };
        if pair.co_occurrences.add(leader_ns, self.slice_ns, self.keep) {
            if pair.lags.len() >= LAG_SAMPLES {
                pair.lags.pop_front();
            }
            pair.lags.push_back((leader_ns, follower_ns - leader_ns));
        }
    }

    /// Expires what fell out of the window ending at `now_ns` and lists the
    /// correlations that pass the thresholds: highest confidence first, then
    /// most co-occurrences, then by leader and follower signature.
    pub fn snapshot(&mut self, now_ns: u64) -> Vec<Correlation> {
        let cutoff = now_ns.saturating_sub(self.window_ns) / self.slice_ns;
        self.signatures.retain(|_, s| {
            s.occurrences.expire(cutoff);
            !s.occurrences.is_empty()
        });
        let signatures = &self.signatures;
        self.ids.retain(|_, id| signatures.contains_key(id));

        let mut found = Vec::new();
        let (config, slice_ns, evictions) = (&self.config, self.slice_ns, &self.evictions);
        self.pairs.retain(|(leader, follower), pair| {
            pair.co_occurrences.expire(cutoff);
            let (Some(l), Some(f)) = (signatures.get(leader), signatures.get(follower)) else {
                // Its signatures were evicted: the pair goes with them.
                if !pair.co_occurrences.is_empty() {
                    evictions.inc();
                }
                return false;
            };
            // Co-occurrences count only where the leader's occurrences do.
            let from = cutoff.max(l.occurrences.floor);
            pair.co_occurrences.expire(from);
            if pair.co_occurrences.is_empty() {
                return false;
            }
            let co = pair.co_occurrences.count_since(from);
            let total = l.occurrences.count_since(cutoff);
            if co >= u64::from(config.min_co_occurrences)
                && co as f64 >= config.min_confidence * total as f64
                && let Some((first, last)) = pair.co_occurrences.span_since(from)
            {
                found.push((
                    (co, total),
                    Correlation {
                        leader: side(l),
                        follower: side(f),
                        co_occurrences: co,
                        leader_occurrences: total,
                        confidence: (co as f64 / total.max(1) as f64 * 1000.0).round() / 1000.0,
                        median_lag_ms: median_lag_ms(&pair.lags, from.saturating_mul(slice_ns)),
                        first_seen: rfc3339(first),
                        last_seen: rfc3339(last),
                    },
                ));
            }
            true
        });
        found.sort_by(|(a, ca), (b, cb)| {
            // Confidence by the exact ratios (co / total, cross-multiplied), not
            // the rounded figures, so near-ties still order by the true value.
            let ratio =
                (u128::from(b.0) * u128::from(a.1)).cmp(&(u128::from(a.0) * u128::from(b.1)));
            ratio
                .then(b.0.cmp(&a.0))
                .then_with(|| ca.leader.signature.cmp(&cb.leader.signature))
                .then_with(|| ca.follower.signature.cmp(&cb.follower.signature))
        });
        found.into_iter().map(|(_, c)| c).collect()
    }
}

/// Records that a finding led `follower`; false if it already had, or if it
/// leads too many signatures to keep track.
fn lead(led: &mut Vec<SigId>, follower: SigId) -> bool {
    if led.contains(&follower) || led.len() >= MAX_FOLLOWERS_PER_EVENT {
        return false;
    }
    led.push(follower);
    true
}

fn side(s: &Signature) -> CorrelatedFinding {
    CorrelatedFinding {
        signature: s.name.to_string(),
        kind: s.kind.to_string(),
        service: s.service.to_string(),
    }
}

/// The median lag of the samples of leaders from `from_ns` on (all of them if
/// none is that recent, which only late arrivals can cause), in milliseconds.
fn median_lag_ms(samples: &VecDeque<(u64, u64)>, from_ns: u64) -> u64 {
    let mut lags: Vec<u64> = samples
        .iter()
        .filter(|(at, _)| *at >= from_ns)
        .map(|&(_, lag)| lag)
        .collect();
    if lags.is_empty() {
        lags = samples.iter().map(|&(_, lag)| lag).collect();
    }
    if lags.is_empty() {
        return 0;
    }
    lags.sort_unstable();
    let mid = lags.len() / 2;
    let ns = if lags.len() % 2 == 1 {
        lags[mid]
    } else {
        lags[mid - 1] / 2 + lags[mid] / 2 + (lags[mid - 1] % 2 + lags[mid] % 2) / 2
    };
    ns.saturating_add(500_000) / 1_000_000
}
