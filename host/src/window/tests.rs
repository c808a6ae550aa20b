use detector_api::SpanId;

use super::*;
use crate::model::SpanRecord;

fn limits() -> WindowLimits {
    WindowLimits {
        max_traces: 3,
        max_spans_per_trace: 4,
        ttl: Duration::from_secs(30),
        settle: Duration::from_secs(2),
        remembered: 10,
    }
}

fn frag(t: u8, spans: usize, root: bool) -> TraceFragment {
    let mut f = TraceFragment::new(TraceId([t; 16]));
    for i in 0..spans {
        let parent = if root && i == 0 {
            SpanId::default()
        } else {
            SpanId([1; 8])
        };
        f.spans.push(SpanRecord {
            span_id: SpanId([i as u8 + 1; 8]),
            parent_id: parent,
            ..SpanRecord::default()
        });
    }
    f.has_root = root;
    f
}

fn ids(closed: &[ClosedTrace]) -> Vec<(u8, CloseReason, usize)> {
    closed
        .iter()
        .map(|c| (c.fragment.trace_id.0[0], c.reason, c.fragment.spans.len()))
        .collect()
}

#[test]
fn a_trace_with_its_root_closes_after_the_settle_delay() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    w.insert(frag(1, 2, false), t0, &mut closed);
    w.insert(
        frag(1, 1, true),
        t0 + Duration::from_millis(500),
        &mut closed,
    );
    w.expire(t0 + Duration::from_millis(2400), &mut closed);
    assert!(closed.is_empty(), "quiet for 1.9 s only");
    assert_eq!(w.next_deadline(), Some(t0 + Duration::from_millis(2500)));
    w.expire(t0 + Duration::from_millis(2500), &mut closed);
    assert_eq!(ids(&closed), [(1, CloseReason::Complete, 3)]);
    assert!(w.is_empty());
}

#[test]
fn a_span_arriving_restarts_the_settle_delay() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    w.insert(frag(1, 1, true), t0, &mut closed);
    w.insert(
        frag(1, 1, false),
        t0 + Duration::from_millis(1900),
        &mut closed,
    );
    w.expire(t0 + Duration::from_millis(3000), &mut closed);
    assert!(closed.is_empty());
    w.expire(t0 + Duration::from_millis(3900), &mut closed);
    assert_eq!(ids(&closed), [(1, CloseReason::Complete, 2)]);
}

#[test]
fn a_trace_without_root_waits_for_the_ttl() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    w.insert(frag(1, 2, false), t0, &mut closed);
    w.expire(t0 + Duration::from_secs(29), &mut closed);
    assert!(closed.is_empty());
    w.expire(t0 + Duration::from_secs(30), &mut closed);
    assert_eq!(ids(&closed), [(1, CloseReason::Ttl, 2)]);
}

#[test]
fn the_least_recently_active_trace_is_evicted_to_analysis() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    for t in 1..=3 {
        w.insert(frag(t, 1, false), t0, &mut closed);
    }
    // Touch trace 1 so trace 2 becomes the oldest.
    w.insert(
        frag(1, 1, false),
        t0 + Duration::from_millis(1),
        &mut closed,
    );
    let stats = w.insert(
        frag(4, 1, false),
        t0 + Duration::from_millis(2),
        &mut closed,
    );
    assert_eq!(stats.new_traces, 1);
    assert_eq!(ids(&closed), [(2, CloseReason::Evicted, 1)]);
    assert_eq!(w.len(), 3);
}

#[test]
fn spans_over_the_cap_are_dropped_and_counted() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    assert_eq!(
        w.insert(frag(1, 6, true), t0, &mut closed).dropped_over_cap,
        2
    );
    assert_eq!(
        w.insert(frag(1, 3, false), t0, &mut closed)
            .dropped_over_cap,
        3
    );
    w.drain(&mut closed);
    assert_eq!(ids(&closed), [(1, CloseReason::Shutdown, 4)]);
}

#[test]
fn late_spans_of_an_analyzed_trace_are_counted_and_kept() {
    let mut w = TraceWindow::new(limits());
    let t0 = Instant::now();
    let mut closed = Vec::new();
    w.insert(frag(1, 1, true), t0, &mut closed);
    w.expire(t0 + Duration::from_secs(3), &mut closed);
    let stats = w.insert(frag(1, 2, false), t0 + Duration::from_secs(4), &mut closed);
    assert_eq!(stats.late, 2);
    w.drain(&mut closed);
    assert_eq!(
        ids(&closed),
        [(1, CloseReason::Complete, 1), (1, CloseReason::Shutdown, 2)]
    );
}
