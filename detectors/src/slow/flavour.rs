//! The SQL, HTTP and messaging flavours: which spans each detector looks at
//! and how its findings are worded. The detection logic is shared.

use detector_api::{IoKind, SpanKind, SpanView};

use crate::common::is_outbound;

/// What distinguishes the SQL, HTTP and messaging flavours.
pub(super) struct Flavour {
    pub(super) kind: IoKind,
    pub(super) finding_kind: &'static str,
    pub(super) noun: &'static str,
    /// Message sends (producer or client spans) rather than outbound calls.
    sends: bool,
    pub(super) suggestion: &'static str,
}

impl Flavour {
    pub(super) fn eligible(&self, s: &SpanView<'_>) -> bool {
        if self.sends {
            message_send(s)
        } else {
            outbound_call(s)
        }
    }
}

fn outbound_call(s: &SpanView<'_>) -> bool {
    !s.template.is_empty() && is_outbound(s)
}

fn message_send(s: &SpanView<'_>) -> bool {
    !s.template.is_empty() && matches!(s.span_kind, SpanKind::Producer | SpanKind::Client)
}

pub(super) const SQL: Flavour = Flavour {
    kind: IoKind::Sql,
    finding_kind: "slow_sql",
    noun: "queries",
    sends: false,
    suggestion: "Read the query plan (EXPLAIN ANALYZE): add the index the filter or join needs, avoid full scans, and paginate or narrow queries that read many rows.",
};

pub(super) const HTTP: Flavour = Flavour {
    kind: IoKind::Http,
    finding_kind: "slow_http",
    noun: "calls",
    sends: false,
    suggestion: "Set a timeout below the caller's latency budget, cache responses that can be reused, and move calls the response does not need off the request path (asynchronous or in parallel); then find out why the remote side is slow.",
};

pub(super) const MESSAGING: Flavour = Flavour {
    kind: IoKind::Messaging,
    finding_kind: "slow_messaging",
    noun: "sends",
    sends: true,
    suggestion: "Check the broker's health (disk, partition leaders, replication acknowledgements) and consumer lag, and tune producer batching, acks and buffer sizes; send asynchronously when the request does not need the acknowledgement.",
};
