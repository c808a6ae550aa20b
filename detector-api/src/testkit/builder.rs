//! [`TraceBuilder`]: hand-built traces for detector tests.

use abi_stable::std_types::{ROption, RSlice, RVec};

use crate::{
    Attribute, CodeLocation, Detector, DetectorError, Finding, IoKind, NO_PARENT, SpanId, SpanKind,
    SpanView, TraceId, TraceIndex, TraceView,
};

/// Time origin of built traces: 2023-11-14T22:13:20Z, in nanoseconds.
pub const T0_NS: u64 = 1_700_000_000_000_000_000;

/// A stand-in for the host's parameter hash (FNV-1a): equal strings, equal
/// hashes.
pub fn params_hash(params: &str) -> u64 {
    params.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An owned span description; see the constructors for the common shapes.
#[derive(Debug, Clone)]
pub struct SpanSpec {
    /// Index of the parent in the builder, if any.
    pub parent: Option<usize>,
    /// `service.name`.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Instrumentation scope name.
    pub scope: String,
    /// I/O kind.
    pub kind: IoKind,
    /// OpenTelemetry span kind.
    pub span_kind: SpanKind,
    /// Start, microseconds after [`T0_NS`].
    pub start_us: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Error status.
    pub is_error: bool,
    /// HTTP status, 0 for none.
    pub http_status: u16,
    /// Raw target.
    pub target: String,
    /// Normalized template.
    pub template: String,
    /// The parameters, joined; hashed into `params_hash`.
    pub params: String,
    /// Parameter count.
    pub param_count: u32,
    /// `db.system`.
    pub db_system: String,
    /// HTTP method.
    pub http_method: String,
    /// `http.route`.
    pub http_route: String,
    /// `peer.service`.
    pub peer_service: String,
    /// `messaging.system`.
    pub messaging_system: String,
    /// Messaging destination.
    pub messaging_destination: String,
    /// HTTP response size.
    pub response_bytes: Option<u64>,
    /// `code.function`, `code.filepath`, `code.namespace`, `code.lineno`.
    pub code: (String, String, String, u32),
    /// Remaining attributes.
    pub attributes: Vec<(String, String)>,
}

impl Default for SpanSpec {
    fn default() -> Self {
        Self {
            parent: None,
            service: "svc".into(),
            name: "span".into(),
            scope: String::new(),
            kind: IoKind::Other,
            span_kind: SpanKind::Internal,
            start_us: 0,
            duration_us: 1000,
            is_error: false,
            http_status: 0,
            target: String::new(),
            template: String::new(),
            params: String::new(),
            param_count: 0,
            db_system: String::new(),
            http_method: String::new(),
            http_route: String::new(),
            peer_service: String::new(),
            messaging_system: String::new(),
            messaging_destination: String::new(),
            response_bytes: None,
            code: Default::default(),
            attributes: Vec::new(),
        }
    }
}

impl SpanSpec {
    /// An inbound HTTP request (`SpanKind::Server`) for `route`.
    pub fn server(method: &str, route: &str) -> Self {
        Self {
            name: format!("{method} {route}"),
            kind: IoKind::Http,
            span_kind: SpanKind::Server,
            http_method: method.into(),
            http_route: route.into(),
            http_status: 200,
            ..Self::default()
        }
    }

    /// A SQL client span with an already-normalized `template` and its
    /// `params` (any text; equal text means equal parameters).
    pub fn sql(template: &str, params: &str) -> Self {
        Self {
            name: template.split_whitespace().next().unwrap_or("query").into(),
            kind: IoKind::Sql,
            span_kind: SpanKind::Client,
            target: template.into(),
            template: template.into(),
            params: params.into(),
            param_count: u32::from(!params.is_empty()),
            db_system: "postgresql".into(),
            ..Self::default()
        }
    }

    /// An outbound HTTP client span with template `METHOD host/path`.
    pub fn http_client(method: &str, template: &str, params: &str) -> Self {
        Self {
            name: method.into(),
            kind: IoKind::Http,
            span_kind: SpanKind::Client,
            target: template.into(),
            template: format!("{method} {template}"),
            params: params.into(),
            param_count: u32::from(!params.is_empty()),
            http_method: method.into(),
            http_status: 200,
            ..Self::default()
        }
    }

    /// Sets the service.
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self
    }

    /// Sets start and duration, in microseconds after [`T0_NS`].
    pub fn at_us(mut self, start_us: u64, duration_us: u64) -> Self {
        self.start_us = start_us;
        self.duration_us = duration_us;
        self
    }

    /// Sets the instrumentation scope name.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }

    /// Sets the code location.
    pub fn code(mut self, function: &str, filepath: &str, lineno: u32) -> Self {
        self.code = (function.into(), filepath.into(), String::new(), lineno);
        self
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }
}

/// Builds a trace span by span, then lends it out as a [`TraceView`].
#[derive(Debug, Clone)]
pub struct TraceBuilder {
    trace_id: TraceId,
    spans: Vec<SpanSpec>,
}

impl Default for TraceBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceBuilder {
    /// An empty trace with a fixed id.
    pub fn new() -> Self {
        Self::with_id(TraceId([0x4b; 16]))
    }

    /// An empty trace with `trace_id`.
    pub fn with_id(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            spans: Vec::new(),
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// Adds a root span; returns its index.
    pub fn root(&mut self, spec: SpanSpec) -> usize {
        self.spans.push(SpanSpec {
            parent: None,
            ..spec
        });
        self.spans.len() - 1
    }

    /// Adds a child of span `parent`; returns its index.
    pub fn child(&mut self, parent: usize, spec: SpanSpec) -> usize {
        self.spans.push(SpanSpec {
            parent: Some(parent),
            ..spec
        });
        self.spans.len() - 1
    }

    /// The span id given to span `index`.
    pub fn span_id(index: usize) -> SpanId {
        SpanId(((index as u64) + 1).to_be_bytes())
    }

    /// Mutable access to a span already added.
    pub fn span_mut(&mut self, index: usize) -> &mut SpanSpec {
        &mut self.spans[index]
    }

    /// Calls `f` with the trace as a [`TraceView`].
    pub fn with_view<R>(&self, f: impl FnOnce(&TraceView<'_>) -> R) -> R {
        let attrs: Vec<Vec<Attribute<'_>>> = self
            .spans
            .iter()
            .map(|s| {
                s.attributes
                    .iter()
                    .map(|(k, v)| Attribute {
                        key: k.as_str().into(),
                        value: v.as_str().into(),
                    })
                    .collect()
            })
            .collect();
        let views: Vec<SpanView<'_>> = self
            .spans
            .iter()
            .zip(&attrs)
            .enumerate()
            .map(|(i, (s, a))| SpanView {
                span_id: Self::span_id(i),
                parent: s.parent.map_or(NO_PARENT, |p| p as u32),
                service: s.service.as_str().into(),
                name: s.name.as_str().into(),
                scope: s.scope.as_str().into(),
                kind: s.kind,
                span_kind: s.span_kind,
                is_error: s.is_error,
                http_status: s.http_status,
                start_ns: T0_NS + s.start_us * 1000,
                duration_ns: s.duration_us * 1000,
                target: s.target.as_str().into(),
                template: s.template.as_str().into(),
                template_hash: params_hash(&s.template),
                params_hash: params_hash(&s.params),
                param_count: s.param_count,
                db_system: s.db_system.as_str().into(),
                http_method: s.http_method.as_str().into(),
                http_route: s.http_route.as_str().into(),
                peer_service: s.peer_service.as_str().into(),
                messaging_system: s.messaging_system.as_str().into(),
                messaging_destination: s.messaging_destination.as_str().into(),
                response_bytes: s.response_bytes.map_or(ROption::RNone, ROption::RSome),
                code: CodeLocation {
                    function: s.code.0.as_str().into(),
                    filepath: s.code.1.as_str().into(),
                    namespace: s.code.2.as_str().into(),
                    lineno: s.code.3,
                },
                attributes: RSlice::from_slice(a),
            })
            .collect();
        let index = TraceIndex::build(&views);
        let view = TraceView::new(self.trace_id, &views, &index);
        f(&view)
    }

    /// Runs `detector` over the trace and returns its findings.
    pub fn run(&self, detector: &mut dyn Detector) -> Result<Vec<Finding>, DetectorError> {
        self.with_view(|view| {
            let mut out = RVec::new();
            detector.detect(view, &mut out)?;
            Ok(out.into_vec())
        })
    }
}
