//! One span as detectors see it: identifiers, timing, the I/O it performed and
//! its normalized template. Every string borrows a host-owned buffer, so
//! building the view copies no string.

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RSlice, RStr};

use crate::SpanId;

/// `SpanView::parent` of a span whose parent is not in the trace (a root, or an
/// orphan whose parent never arrived).
pub const NO_PARENT: u32 = u32::MAX;

/// What kind of I/O a span performed, decided by the host from semantic
/// convention attributes (`db.*`, `http.*`/`url.*`, `messaging.*`, `rpc.*`).
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IoKind {
    /// A database call (`db.system` or a statement attribute).
    Sql = 0,
    /// An HTTP call, inbound or outbound.
    Http = 1,
    /// A message produced or consumed (`messaging.system`).
    Messaging = 2,
    /// A remote procedure call (`rpc.system`), e.g. gRPC.
    Rpc = 3,
    /// Anything else (internal work).
    Other = 4,
}

impl IoKind {
    /// How many kinds exist; indexes sized by kind use it.
    pub const COUNT: usize = 5;
    /// Every kind, in index order.
    pub const ALL: [IoKind; Self::COUNT] = [
        IoKind::Sql,
        IoKind::Http,
        IoKind::Messaging,
        IoKind::Rpc,
        IoKind::Other,
    ];

    /// The lowercase name used in metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IoKind::Sql => "sql",
            IoKind::Http => "http",
            IoKind::Messaging => "messaging",
            IoKind::Rpc => "rpc",
            IoKind::Other => "other",
        }
    }
}

/// The OpenTelemetry span kind: who initiated the call.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Unspecified or internal work.
    Internal = 0,
    /// Handles an inbound request (an endpoint).
    Server = 1,
    /// Makes an outbound call.
    Client = 2,
    /// Sends a message.
    Producer = 3,
    /// Receives a message.
    Consumer = 4,
}

impl SpanKind {
    /// True for spans that handle an inbound request or message.
    pub fn is_inbound(self) -> bool {
        matches!(self, SpanKind::Server | SpanKind::Consumer)
    }
}

/// Where in the source a span was emitted, from the `code.*` attributes
/// (`code.function.name`/`code.function`, `code.file.path`/`code.filepath`,
/// `code.line.number`/`code.lineno`, `code.namespace`). Empty when unknown.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, Default)]
pub struct CodeLocation<'a> {
    /// Function or method name.
    pub function: RStr<'a>,
    /// Source file path.
    pub filepath: RStr<'a>,
    /// Namespace, class or module.
    pub namespace: RStr<'a>,
    /// Line number; 0 when unknown.
    pub lineno: u32,
}

impl CodeLocation<'_> {
    /// True when no `code.*` attribute was present.
    pub fn is_empty(&self) -> bool {
        self.function.is_empty() && self.filepath.is_empty() && self.namespace.is_empty()
    }
}

/// A span attribute the host did not map to a dedicated field, with its value
/// rendered as text (arrays and maps as JSON).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Attribute<'a> {
    /// Attribute key, e.g. `db.operation.name`.
    pub key: RStr<'a>,
    /// Attribute value as text.
    pub value: RStr<'a>,
}

/// One span of a trace, as every detector sees it.
///
/// Strings are empty when the span did not carry the attribute.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct SpanView<'a> {
    /// The span's id.
    pub span_id: SpanId,
    /// Index of the parent span in [`TraceView::spans`](crate::TraceView::spans),
    /// or [`NO_PARENT`].
    pub parent: u32,
    /// `service.name` of the resource that emitted the span.
    pub service: RStr<'a>,
    /// The span name.
    pub name: RStr<'a>,
    /// Name of the instrumentation scope that emitted the span (e.g.
    /// `io.opentelemetry.hibernate-6.0`, `opentelemetry.instrumentation.django`):
    /// tells which ORM or client library made the call.
    pub scope: RStr<'a>,
    /// I/O category.
    pub kind: IoKind,
    /// OpenTelemetry span kind.
    pub span_kind: SpanKind,
    /// The span's status is error (or, for HTTP, a 5xx response).
    pub is_error: bool,
    /// HTTP response status code, 0 when none.
    pub http_status: u16,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Duration in nanoseconds.
    pub duration_ns: u64,
    /// The raw target: the SQL statement, or the URL for HTTP, or the
    /// destination for messaging.
    pub target: RStr<'a>,
    /// The normalized template: literals replaced by `?` for SQL,
    /// `METHOD host/path` with ids as `{id}` for HTTP. Equal templates mean
    /// the same code path.
    pub template: RStr<'a>,
    /// A hash of `template`: equal templates have equal hashes, so grouping
    /// can sort and compare integers before (rarely) comparing text.
    pub template_hash: u64,
    /// A hash of the parameters extracted by normalization. Equal templates
    /// with equal hashes are the same call with the same parameters.
    pub params_hash: u64,
    /// How many parameters normalization extracted.
    pub param_count: u32,
    /// `db.system` / `db.system.name`.
    pub db_system: RStr<'a>,
    /// HTTP request method.
    pub http_method: RStr<'a>,
    /// `http.route` of an inbound HTTP span (the endpoint template).
    pub http_route: RStr<'a>,
    /// `peer.service`, or the server address for outbound calls.
    pub peer_service: RStr<'a>,
    /// `messaging.system`.
    pub messaging_system: RStr<'a>,
    /// `messaging.destination.name` / `messaging.destination`.
    pub messaging_destination: RStr<'a>,
    /// HTTP response body size in bytes, when reported.
    pub response_bytes: ROption<u64>,
    /// Source location from the `code.*` attributes.
    pub code: CodeLocation<'a>,
    /// The remaining attributes.
    pub attributes: RSlice<'a, Attribute<'a>>,
}

impl<'a> SpanView<'a> {
    /// End time, nanoseconds since the Unix epoch.
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    /// Index of the parent span, when it is in the trace.
    pub fn parent_index(&self) -> Option<usize> {
        (self.parent != NO_PARENT).then_some(self.parent as usize)
    }

    /// Looks up one of the remaining attributes by key.
    pub fn attribute(&self, key: &str) -> Option<&'a str> {
        self.attributes
            .as_slice()
            .iter()
            .find(|a| a.key.as_str() == key)
            .map(|a| a.value.as_str())
    }

    /// The endpoint this span serves when it is inbound: `http.route` with the
    /// method when known, else the span name.
    pub fn endpoint(&self) -> Option<String> {
        if !self.span_kind.is_inbound() {
            return None;
        }
        let route = self.http_route.as_str();
        if route.is_empty() {
            return Some(self.name.as_str().to_owned());
        }
        let method = self.http_method.as_str();
        Some(if method.is_empty() {
            route.to_owned()
        } else {
            format!("{method} {route}")
        })
    }
}
