//! The traces the generator sends: each pattern is a shape the daemon's
//! detectors know (or must stay quiet on), built as OTLP spans with the
//! semantic-convention attributes real instrumentation sets.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span};

/// One kind of trace in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A handler running one SELECT per item: an N+1.
    NPlusOne,
    /// The same query with the same parameters, three times.
    Redundant,
    /// Three SELECTs slower than 500 ms.
    Slow,
    /// Twenty outbound HTTP calls from one request.
    Chatty,
    /// Twenty-five children under one parent.
    Fanout,
    /// A few distinct calls: nothing to report.
    Clean,
}

impl Pattern {
    pub const ALL: [Pattern; 6] = [
        Pattern::NPlusOne,
        Pattern::Redundant,
        Pattern::Slow,
        Pattern::Chatty,
        Pattern::Fanout,
        Pattern::Clean,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::NPlusOne => "n1",
            Pattern::Redundant => "redundant",
            Pattern::Slow => "slow",
            Pattern::Chatty => "chatty",
            Pattern::Fanout => "fanout",
            Pattern::Clean => "clean",
        }
    }

    pub fn parse(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Spans of one trace. `spans` is honoured where the shape allows it;
    /// chatty and fan-out traces need more calls than a typical trace holds
    /// to be what they are, so they take at least 21 and 26 spans.
    pub fn spans(self, trace_id: [u8; 16], spans: usize, t0: u64) -> Vec<Span> {
        let spans = spans.max(2);
        let root = server_span(trace_id, t0, 200_000_000);
        let root_id = root.span_id.clone();
        let mut out = vec![root];
        let child = |i: usize, start_ms: u64, dur_ms: u64, name: &str, attrs: Vec<KeyValue>| Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id(i + 2),
            parent_span_id: root_id.clone(),
            name: name.into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: t0 + start_ms * 1_000_000,
            end_time_unix_nano: t0 + (start_ms + dur_ms) * 1_000_000,
            attributes: attrs,
            ..Span::default()
        };
        let sql = |statement: String| {
            vec![
                kv("db.system", "postgresql"),
                kv("db.statement", &statement),
            ]
        };
        let http = |url: String| {
            vec![
                kv("http.request.method", "GET"),
                kv("url.full", &url),
                kv("server.address", "inventory"),
            ]
        };
        match self {
            Pattern::NPlusOne => {
                for i in 0..spans - 1 {
                    let q = format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i);
                    out.push(child(i, 1 + i as u64, 1, "SELECT order_items", sql(q)));
                }
            }
            Pattern::Redundant => {
                for i in 0..spans - 1 {
                    // Three identical calls, then distinct ones.
                    let id = if i < 3 { 7 } else { 100 + i };
                    let q = format!("SELECT name FROM customers WHERE id = {id}");
                    out.push(child(i, 1 + 2 * i as u64, 1, "SELECT customers", sql(q)));
                }
            }
            Pattern::Slow => {
                for i in 0..spans - 1 {
                    // Three slow runs of one report query, then quick lookups.
                    let (q, dur) = if i < 3 {
                        (
                            "SELECT sum(total) FROM invoices WHERE year = 2026".to_owned(),
                            800,
                        )
                    } else {
                        (format!("SELECT * FROM settings WHERE key = 'k{i}'"), 1)
                    };
                    out.push(child(i, 1 + i as u64, dur, "SELECT", sql(q)));
                }
            }
            Pattern::Chatty => {
                for i in 0..spans.max(21) - 1 {
                    let url = format!("http://inventory/api/stock/{}", i % 7);
                    out.push(child(i, 1 + i as u64, 2, "GET", http(url)));
                }
            }
            Pattern::Fanout => {
                for i in 0..spans.max(26) - 1 {
                    let name = format!("render-widget-{i}");
                    out.push(child(i, 1, 1, &name, Vec::new()));
                }
            }
            Pattern::Clean => {
                for i in 0..spans - 1 {
                    let q = format!("SELECT * FROM table_{i} WHERE id = $1");
                    out.push(child(i, 1 + 3 * i as u64, 1, "SELECT", sql(q)));
                }
            }
        }
        out
    }
}

fn server_span(trace_id: [u8; 16], t0: u64, dur_ns: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(1),
        name: "GET /orders/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: t0,
        end_time_unix_nano: t0 + dur_ns,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("http.route", "/orders/{id}"),
        ],
        ..Span::default()
    }
}

fn span_id(n: usize) -> Vec<u8> {
    (n as u64 + 1).to_be_bytes().to_vec()
}

/// A string attribute.
pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// A weighted mix, e.g. `n1=1,redundant=1,clean=5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(Pattern, u32)>);

impl Mix {
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut out = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let pattern = Pattern::parse(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
                format!("unknown pattern {name:?}; known: {}", known.join(", "))
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("weight of {name} must be a whole number, got {weight:?}"))?;
            if weight > 0 {
                out.push((pattern, weight));
            }
        }
        if out.is_empty() {
            return Err("the mix names no pattern with a weight above 0".into());
        }
        Ok(Mix(out))
    }

    /// The pattern of the `n`th trace: weights cycle deterministically.
    pub fn pick(&self, n: usize) -> Pattern {
        let total: u32 = self.0.iter().map(|(_, w)| w).sum();
        let mut at = (n % total as usize) as u32;
        for (p, w) in &self.0 {
            if at < *w {
                return *p;
            }
            at -= w;
        }
        self.0[0].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_cycle_by_weight() {
        let m = Mix::parse("n1=2,clean").unwrap();
        let picked: Vec<_> = (0..6).map(|n| m.pick(n)).collect();
        assert_eq!(
            picked,
            [
                Pattern::NPlusOne,
                Pattern::NPlusOne,
                Pattern::Clean,
                Pattern::NPlusOne,
                Pattern::NPlusOne,
                Pattern::Clean
            ]
        );
        assert!(Mix::parse("n1=x").is_err());
        assert!(Mix::parse("nope").unwrap_err().contains("known: n1"));
        assert!(Mix::parse("n1=0").is_err());
    }

    #[test]
    fn shapes_honour_the_span_count_where_they_can() {
        for p in [
            Pattern::NPlusOne,
            Pattern::Redundant,
            Pattern::Slow,
            Pattern::Clean,
        ] {
            assert_eq!(p.spans([1; 16], 9, 0).len(), 9, "{p:?}");
        }
        assert_eq!(Pattern::Chatty.spans([1; 16], 9, 0).len(), 21);
        assert_eq!(Pattern::Fanout.spans([1; 16], 9, 0).len(), 26);
    }
}
