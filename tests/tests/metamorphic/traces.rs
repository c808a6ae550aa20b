//! The generated traces of the metamorphic suite: the blocks a request is
//! made of, the strategies that draw them, and how a plan becomes OTLP
//! spans and requests.

use super::*;

/// One part of a generated request.
#[derive(Debug, Clone)]
pub(super) enum Block {
    /// The same SELECT with a distinct id per call, awaited one by one.
    NPlusOneSql { n: u64, dur_us: u64, gap_us: u64 },
    /// The same GET with a distinct id per call, awaited one by one.
    NPlusOneHttp { n: u64, dur_us: u64, gap_us: u64 },
    /// The same call with the same parameters, `n` times.
    Redundant { http: bool, n: u64 },
    /// Calls of one template above the slow threshold.
    Slow { http: bool, durations_ms: Vec<u64> },
    /// One span starting `n` gRPC calls at once (`ties`: identical starts).
    Fanout { n: u64, ties: bool },
    /// A few different calls.
    Clean { n: u64, overlap: bool },
    /// The same statement already sanitized by the agent (`$1`), from an
    /// ORM (`code.namespace`) or not, awaited one by one or all in flight.
    Sanitized {
        n: u64,
        dur_us: u64,
        gap_us: u64,
        orm: bool,
        concurrent: bool,
    },
    /// `n` different queries in flight at once (a saturated pool).
    Concurrent { n: u64, ties: bool },
    /// `n` different calls, each starting when the previous one ended.
    Sequential { n: u64 },
    /// The same call with distinct ids, all started at the same instant.
    Burst { http: bool, n: u64 },
    /// A loop slower than the N+1 window: calls `gap_ms` apart.
    Wide { n: u64, gap_ms: u64 },
}

/// Where a block's calls hang.
#[derive(Debug, Clone, Copy)]
pub(super) enum Parent {
    /// Directly under the request's inbound span.
    Root,
    /// Under an internal span of their own.
    Internal,
    /// In another service, under its inbound span (a downstream request).
    Remote,
}

/// The service a [`Parent::Remote`] block runs in.
pub(super) const REMOTE: &str = "inventory-svc";

/// One request trace: an inbound span and its blocks.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) service: &'static str,
    pub(super) blocks: Vec<(Block, Parent)>,
}

pub(super) fn parent() -> impl Strategy<Value = Parent> {
    prop_oneof![
        Just(Parent::Root),
        Just(Parent::Internal),
        Just(Parent::Remote)
    ]
}

pub(super) fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        (5u64..=12, 200u64..=4_000, 100u64..=20_000)
            .prop_map(|(n, dur_us, gap_us)| Block::NPlusOneSql { n, dur_us, gap_us }),
        (5u64..=12, 500u64..=8_000, 100u64..=20_000)
            .prop_map(|(n, dur_us, gap_us)| Block::NPlusOneHttp { n, dur_us, gap_us }),
        (any::<bool>(), 2u64..=6).prop_map(|(http, n)| Block::Redundant { http, n }),
        (any::<bool>(), prop::collection::vec(501u64..=3_000, 3..=4))
            .prop_map(|(http, durations_ms)| Block::Slow { http, durations_ms }),
        (21u64..=30, any::<bool>()).prop_map(|(n, ties)| Block::Fanout { n, ties }),
        (1u64..=4, any::<bool>()).prop_map(|(n, overlap)| Block::Clean { n, overlap }),
        (
            5u64..=12,
            200u64..=4_000,
            0u64..=20_000,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(n, dur_us, gap_us, orm, concurrent)| Block::Sanitized {
                n,
                dur_us,
                gap_us,
                orm,
                concurrent
            }),
        (10u64..=14, any::<bool>()).prop_map(|(n, ties)| Block::Concurrent { n, ties }),
        (3u64..=5).prop_map(|n| Block::Sequential { n }),
        (any::<bool>(), 5u64..=12).prop_map(|(http, n)| Block::Burst { http, n }),
        (6u64..=12, 60u64..=200).prop_map(|(n, gap_ms)| Block::Wide { n, gap_ms }),
    ]
}

/// A block that is an N+1 by the rules whatever surrounds it.
pub(super) fn n_plus_one_block() -> impl Strategy<Value = Block> {
    prop_oneof![
        (5u64..=12, 200u64..=4_000, 100u64..=20_000)
            .prop_map(|(n, dur_us, gap_us)| Block::NPlusOneSql { n, dur_us, gap_us }),
        (5u64..=12, 500u64..=8_000, 100u64..=20_000)
            .prop_map(|(n, dur_us, gap_us)| Block::NPlusOneHttp { n, dur_us, gap_us }),
        // Sanitized: by ORM scope (even in flight together), or by the
        // timing of a loop (idle time between calls).
        (5u64..=12, 200u64..=4_000, 100u64..=20_000, any::<bool>()).prop_map(
            |(n, dur_us, gap_us, orm)| Block::Sanitized {
                n,
                dur_us,
                gap_us,
                orm,
                concurrent: orm && gap_us % 2 == 0,
            }
        ),
        (any::<bool>(), 5u64..=12).prop_map(|(http, n)| Block::Burst { http, n }),
    ]
}

pub(super) fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::sample::select(vec!["orders-api", "billing", "catalog"]),
        prop::collection::vec((block(), parent()), 1..=5),
    )
        .prop_map(|(service, blocks)| Plan { service, blocks })
}

/// A plan with at least one N+1 block; also returns the index of one.
pub(super) fn plan_with_n_plus_one() -> impl Strategy<Value = (Plan, usize)> {
    (
        plan(),
        n_plus_one_block(),
        parent(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut plan, n1, parent, at)| {
            let i = at.index(plan.blocks.len() + 1);
            plan.blocks.insert(i, (n1, parent));
            (plan, i)
        })
}

pub(super) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// A generated trace: its spans with their service, and the spans each
/// block made (its calls, not their parent).
pub(super) struct Built {
    pub(super) spans: Vec<(&'static str, Span)>,
    pub(super) block_calls: Vec<Vec<[u8; 8]>>,
}

/// Span ids carry `copy` in their first byte, so a copy's ids sort like the
/// original's.
pub(super) fn span_id(copy: u8, n: u64) -> [u8; 8] {
    let mut id = n.to_be_bytes();
    id[0] = copy;
    id
}

pub(super) fn trace_id(seed: u64, copy: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0x7e;
    id[1] = copy;
    id[8..].copy_from_slice(&seed.to_be_bytes());
    id
}

pub(super) fn build(plan: &Plan, trace: [u8; 16], copy: u8) -> Built {
    let mut spans = Vec::new();
    let mut block_calls = Vec::new();
    let mut next_id = 1u64;
    let mut new_span = |parent: Option<[u8; 8]>,
                        name: String,
                        kind: span::SpanKind,
                        start: u64,
                        dur: u64,
                        attributes: Vec<KeyValue>| {
        let id = span_id(copy, next_id);
        next_id += 1;
        let span = Span {
            trace_id: trace.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + dur,
            attributes,
            ..Span::default()
        };
        (id, span)
    };
    let sql = |statement: String| {
        vec![
            kv("db.system", "postgresql"),
            kv("db.statement", &statement),
        ]
    };
    let get = |url: String| vec![kv("http.request.method", "GET"), kv("url.full", &url)];

    let mut cursor = T0 + MS;
    let mut body = Vec::new();
    let mut services: Vec<&'static str> = Vec::new();
    let root_id = span_id(copy, u64::from(u32::MAX));
    for (b, (block, placement)) in plan.blocks.iter().enumerate() {
        let service = match placement {
            Parent::Remote => REMOTE,
            _ => plan.service,
        };
        let (kind, attrs) = match placement {
            Parent::Remote => (
                span::SpanKind::Server,
                vec![
                    kv("http.request.method", "GET"),
                    kv("http.route", &format!("/inventory/step-{b}")),
                ],
            ),
            _ => (span::SpanKind::Internal, vec![]),
        };
        let own_parent = !matches!(placement, Parent::Root);
        // The block's own parent, if any; its times are set once its calls
        // are known.
        let (parent, parent_index) = if own_parent {
            let (id, s) = new_span(Some(root_id), format!("step-{b}"), kind, cursor, 0, attrs);
            body.push(s);
            (id, Some(body.len() - 1))
        } else {
            (root_id, None)
        };
        let block_start = cursor;
        let mut calls = Vec::new();
        let mut call = |body: &mut Vec<Span>, name: String, kind, start, dur, attrs| {
            let (id, s) = new_span(Some(parent), name, kind, start, dur, attrs);
            body.push(s);
            calls.push(id);
            start + dur
        };
        let mut end = cursor;
        match block {
            Block::NPlusOneSql { n, dur_us, gap_us } => {
                for i in 0..*n {
                    let start = cursor + i * (dur_us + gap_us) * US;
                    end = call(
                        &mut body,
                        "SELECT".into(),
                        span::SpanKind::Client,
                        start,
                        dur_us * US,
                        sql(format!(
                            "SELECT id, qty FROM lines_{b} WHERE order_id = {}",
                            1000 + i
                        )),
                    );
                }
            }
            Block::NPlusOneHttp { n, dur_us, gap_us } => {
                for i in 0..*n {
                    let start = cursor + i * (dur_us + gap_us) * US;
                    end = call(
                        &mut body,
                        "GET".into(),
                        span::SpanKind::Client,
                        start,
                        dur_us * US,
                        get(format!("http://svc-{b}.internal/v1/items/{}", 500 + i)),
                    );
                }
            }
            Block::Redundant { http, n } => {
                for i in 0..*n {
                    let start = cursor + i * 3 * MS;
                    let attrs = if *http {
                        get(format!("http://flags-{b}.internal/v1/flags?name=checkout"))
                    } else {
                        sql(format!(
                            "SELECT value FROM settings_{b} WHERE key = 'currency'"
                        ))
                    };
                    end = call(
                        &mut body,
                        "call".into(),
                        span::SpanKind::Client,
                        start,
                        2 * MS,
                        attrs,
                    );
                }
            }
            Block::Slow { http, durations_ms } => {
                let mut start = cursor;
                for (i, d) in durations_ms.iter().enumerate() {
                    let attrs = if *http {
                        get(format!("http://report-{b}.internal/v1/reports/{}", 70 + i))
                    } else {
                        sql(format!("SELECT * FROM report_{b} WHERE day = {}", 20 + i))
                    };
                    end = call(
                        &mut body,
                        "slow".into(),
                        span::SpanKind::Client,
                        start,
                        d * MS,
                        attrs,
                    );
                    start = end + MS;
                }
            }
            Block::Fanout { n, ties } => {
                for i in 0..*n {
                    let start = if *ties { cursor } else { cursor + i * 10 * US };
                    let attrs = vec![
                        kv("rpc.system", "grpc"),
                        kv("rpc.service", &format!("shard{b}.v1.Shard")),
                        kv("rpc.method", "Query"),
                    ];
                    end = end.max(call(
                        &mut body,
                        "shard".into(),
                        span::SpanKind::Client,
                        start,
                        (3 + i % 5) * MS,
                        attrs,
                    ));
                }
            }
            Block::Clean { n, overlap } => {
                let mut start = cursor;
                for i in 0..*n {
                    let attrs = sql(format!("SELECT c{i} FROM clean_{b}_{i} WHERE id = 1"));
                    let e = call(
                        &mut body,
                        "SELECT".into(),
                        span::SpanKind::Client,
                        start,
                        4 * MS,
                        attrs,
                    );
                    end = end.max(e);
                    start = if *overlap {
                        start + 100 * US
                    } else {
                        e + 60 * MS
                    };
                }
            }
            Block::Sanitized {
                n,
                dur_us,
                gap_us,
                orm,
                concurrent,
            } => {
                for i in 0..*n {
                    let start = if *concurrent {
                        cursor + i * 50 * US
                    } else {
                        cursor + i * (dur_us + gap_us) * US
                    };
                    let mut attrs = sql(format!(
                        "SELECT id, sku FROM parts_{b} WHERE assembly_id = $1 AND active"
                    ));
                    if *orm {
                        attrs.push(kv(
                            "code.namespace",
                            "org.hibernate.loader.ast.internal.SingleIdEntityLoaderStandardImpl",
                        ));
                    }
                    end = end.max(call(
                        &mut body,
                        "SELECT".into(),
                        span::SpanKind::Client,
                        start,
                        dur_us * US,
                        attrs,
                    ));
                }
            }
            Block::Concurrent { n, ties } => {
                for i in 0..*n {
                    let start = if *ties { cursor } else { cursor + i * 20 * US };
                    end = end.max(call(
                        &mut body,
                        "SELECT".into(),
                        span::SpanKind::Client,
                        start,
                        (20 + 3 * i) * MS,
                        sql(format!("SELECT count(*) FROM stats_{b}_{i} WHERE day = 1")),
                    ));
                }
            }
            Block::Burst { http, n } => {
                for i in 0..*n {
                    let attrs = if *http {
                        get(format!("http://burst-{b}.internal/v1/items/{}", 900 + i))
                    } else {
                        sql(format!("SELECT * FROM burst_{b} WHERE id = {}", 900 + i))
                    };
                    end = end.max(call(
                        &mut body,
                        "burst".into(),
                        span::SpanKind::Client,
                        cursor,
                        (2 + i % 3) * MS,
                        attrs,
                    ));
                }
            }
            Block::Wide { n, gap_ms } => {
                for i in 0..*n {
                    end = call(
                        &mut body,
                        "SELECT".into(),
                        span::SpanKind::Client,
                        cursor + i * gap_ms * MS,
                        2 * MS,
                        sql(format!("SELECT * FROM wide_{b} WHERE id = {}", 300 + i)),
                    );
                }
            }
            Block::Sequential { n } => {
                let mut start = cursor;
                for i in 0..*n {
                    let attrs = if i % 2 == 0 {
                        get(format!("http://step-{b}-{i}.internal/v1/check"))
                    } else {
                        sql(format!("SELECT ok FROM step_{b}_{i} WHERE id = 1"))
                    };
                    end = call(
                        &mut body,
                        "step".into(),
                        span::SpanKind::Client,
                        start,
                        (40 + 10 * i) * MS,
                        attrs,
                    );
                    start = end;
                }
            }
        }
        services.extend(std::iter::repeat_n(service, body.len() - services.len()));
        if let Some(i) = parent_index {
            let p = &mut body[i];
            p.start_time_unix_nano = block_start.saturating_sub(100 * US);
            p.end_time_unix_nano = end + 100 * US;
        }
        block_calls.push(calls);
        cursor = end + 5 * MS;
    }
    spans.push((
        plan.service,
        Span {
            trace_id: trace.to_vec(),
            span_id: root_id.to_vec(),
            name: "GET /orders/{id}".into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: T0,
            end_time_unix_nano: cursor + MS,
            attributes: vec![
                kv("http.request.method", "GET"),
                kv("http.route", "/orders/{id}"),
            ],
            ..Span::default()
        },
    ));
    spans.extend(services.into_iter().zip(body));
    Built { spans, block_calls }
}

/// One request; one resource per service, in order of first appearance,
/// each holding its spans in the order given.
pub(super) fn request(spans: Vec<(&'static str, Span)>) -> ExportTraceServiceRequest {
    let mut by_service: Vec<(&str, Vec<Span>)> = Vec::new();
    for (service, span) in spans {
        match by_service.iter_mut().find(|(s, _)| *s == service) {
            Some((_, v)) => v.push(span),
            None => by_service.push((service, vec![span])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", service)],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "metamorphic".into(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}
