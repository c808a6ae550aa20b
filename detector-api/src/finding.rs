//! What a detector reports: an owned, ABI-stable [`Finding`] with a builder
//! that keeps detector code short. The host stamps environment, confidence,
//! signature and green impact afterwards; detectors never do.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{RString, RVec};

use crate::{CodeLocation, SpanId, TraceId};

/// How bad a finding is.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing.
    Info = 0,
    /// Worth fixing.
    Warning = 1,
    /// Fix before it ships.
    Critical = 2,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses `info`, `warning` or `critical`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An owned copy of a [`CodeLocation`], carried by a finding.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedCodeLocation {
    /// Function or method name.
    pub function: RString,
    /// Source file path.
    pub filepath: RString,
    /// Namespace, class or module.
    pub namespace: RString,
    /// Line number; 0 when unknown.
    pub lineno: u32,
}

impl OwnedCodeLocation {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.function.is_empty() && self.filepath.is_empty() && self.namespace.is_empty()
    }
}

impl From<&CodeLocation<'_>> for OwnedCodeLocation {
    fn from(c: &CodeLocation<'_>) -> Self {
        Self {
            function: c.function.as_str().into(),
            filepath: c.filepath.as_str().into(),
            namespace: c.namespace.as_str().into(),
            lineno: c.lineno,
        }
    }
}

/// A detector-specific key/value carried in a finding's `extra` map.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct ExtraField {
    /// Key.
    pub key: RString,
    /// Value, as text.
    pub value: RString,
}

/// One problem found in one trace (or, for cross-trace detectors, across
/// several).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Finding {
    /// Id of the detector that produced it. The host overwrites it with the
    /// id the detector is registered under.
    pub detector: RString,
    /// The finding kind, an open namespaced string: `n_plus_one_sql` for the
    /// built-ins, `acme.select_star` style for plugins.
    pub kind: RString,
    /// Severity.
    pub severity: Severity,
    /// One-line human summary.
    pub title: RString,
    /// The normalized template at fault (SQL statement, HTTP route ...).
    pub template: RString,
    /// The service that issued the calls.
    pub service: RString,
    /// The inbound endpoint that led to the calls (`GET /orders/{id}`).
    pub endpoint: RString,
    /// How many times the pattern occurred.
    pub occurrences: u32,
    /// How many distinct parameter sets the occurrences used.
    pub distinct_params: u32,
    /// How many I/O operations could have been avoided.
    pub avoidable_io: u32,
    /// The trace the finding comes from.
    pub trace_id: TraceId,
    /// The spans that make up the finding (bounded by the detector).
    pub evidence: RVec<SpanId>,
    /// Start of the first occurrence, nanoseconds since the Unix epoch.
    pub first_ns: u64,
    /// End of the last occurrence, nanoseconds since the Unix epoch.
    pub last_ns: u64,
    /// Sum of the occurrences' durations, in nanoseconds.
    pub total_duration_ns: u64,
    /// What to do about it.
    pub suggestion: RString,
    /// Where in the code the calls come from, when spans said so.
    pub code: OwnedCodeLocation,
    /// Detector-specific details.
    pub extra: RVec<ExtraField>,
}

impl Finding {
    /// Starts a finding of `kind` with `severity` in trace `trace_id`; every
    /// other field starts empty or zero and is set with the builder methods.
    pub fn new(kind: &str, severity: Severity, trace_id: TraceId) -> Self {
        Self {
            detector: RString::new(),
            kind: kind.into(),
            severity,
            title: RString::new(),
            template: RString::new(),
            service: RString::new(),
            endpoint: RString::new(),
            occurrences: 0,
            distinct_params: 0,
            avoidable_io: 0,
            trace_id,
            evidence: RVec::new(),
            first_ns: 0,
            last_ns: 0,
            total_duration_ns: 0,
            suggestion: RString::new(),
            code: OwnedCodeLocation::default(),
            extra: RVec::new(),
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<RString>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the template.
    pub fn template(mut self, template: &str) -> Self {
        self.template = template.into();
        self
    }

    /// Sets the service.
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self
    }

    /// Sets the source endpoint.
    pub fn endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets occurrences and distinct parameter sets.
    pub fn occurrences(mut self, occurrences: u32, distinct_params: u32) -> Self {
        self.occurrences = occurrences;
        self.distinct_params = distinct_params;
        self
    }

    /// Sets the number of avoidable I/O operations.
    pub fn avoidable_io(mut self, n: u32) -> Self {
        self.avoidable_io = n;
        self
    }

    /// Sets the time span of the occurrences and their summed duration.
    pub fn timing(mut self, first_ns: u64, last_ns: u64, total_duration_ns: u64) -> Self {
        self.first_ns = first_ns;
        self.last_ns = last_ns;
        self.total_duration_ns = total_duration_ns;
        self
    }

    /// Sets the evidence spans.
    pub fn evidence(mut self, spans: impl IntoIterator<Item = SpanId>) -> Self {
        self.evidence = spans.into_iter().collect();
        self
    }

    /// Sets the suggestion.
    pub fn suggestion(mut self, suggestion: impl Into<RString>) -> Self {
        self.suggestion = suggestion.into();
        self
    }

    /// Sets the code location.
    pub fn code(mut self, code: &CodeLocation<'_>) -> Self {
        self.code = code.into();
        self
    }

    /// Adds one detector-specific key/value.
    pub fn extra(mut self, key: &str, value: impl Into<RString>) -> Self {
        self.extra.push(ExtraField {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Looks up an `extra` value by key.
    pub fn extra_value(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|e| e.key.as_str() == key)
            .map(|e| e.value.as_str())
    }
}
