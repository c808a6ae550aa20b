//! The analysis pipeline: shards (one thread each, one per core by default)
//! fed by hash of trace id, the admission bound shared by the receivers, and
//! the findings sink they publish to.

pub mod analyze;
pub mod cross;
pub mod detectors;
pub mod explain;
pub mod priority;
pub mod queue;
pub mod shard;

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::findings::{FindingsSink, Stamp};
use crate::metrics::Metrics;
use crate::model::TraceFragment;
use crate::window::{TraceWindow, WindowLimits};
use analyze::Analyzer;
use detectors::{ActiveDetector, DetectorSpec};
use queue::{Admission, ShardMsg};
use shard::Shard;

/// Handles to the running shards.
pub struct Pipeline {
    senders: Vec<Sender<ShardMsg>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    cross: Mutex<Option<JoinHandle<()>>>,
    pub admission: Arc<Admission>,
}

/// The shards have stopped; nothing more can be analyzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardsStopped;

/// What building the pipeline needs.
pub struct PipelineSettings {
    pub shards: usize,
    pub limits: WindowLimits,
    pub queue_capacity: usize,
    pub stamp: Stamp,
    /// Analyzed traces kept for explain, across all shards.
    pub retained_traces: usize,
    /// Green scoring; `None` when `[green] enabled = false`.
    pub green: Option<Arc<crate::green::GreenScorer>>,
}

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("detector `{id}` refused its configuration: {source}")]
    Build {
        id: String,
        source: detector_api::BuildError,
    },
    #[error("cannot start analysis thread: {0}")]
    Thread(#[from] std::io::Error),
}

impl Pipeline {
    /// Starts `settings.shards` shard threads, each with its own instance of
    /// every detector in `specs`.
    pub fn start(
        settings: PipelineSettings,
        specs: &[Arc<DetectorSpec>],
        metrics: Arc<Metrics>,
        sink: &FindingsSink,
    ) -> Result<Self, PipelineError> {
        let admission = Arc::new(Admission::new(settings.queue_capacity, metrics.clone()));
        let shards = settings.shards.max(1);
        let per_shard = WindowLimits {
            max_traces: settings.limits.max_traces.div_ceil(shards).max(1),
            remembered: settings.limits.remembered.div_ceil(shards),
            ..settings.limits
        };
        let build = |specs: &mut dyn Iterator<Item = &Arc<DetectorSpec>>| {
            specs
                .map(|s| {
                    ActiveDetector::build(s.clone(), &metrics).map_err(|source| {
                        PipelineError::Build {
                            id: s.id.clone(),
                            source,
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        // Cross-trace detectors get one instance that sees every trace.
        let cross_specs: Vec<_> = specs.iter().filter(|s| s.cross_trace).collect();
        let (cross_tx, cross_thread) = if cross_specs.is_empty() {
            (None, None)
        } else {
            let analyzer =
                Analyzer::new(build(&mut cross_specs.into_iter())?, settings.stamp.clone())
                    .with_green(settings.green.clone());
            let (tx, handle) = cross::spawn(analyzer, metrics.clone(), sink.clone())?;
            (Some(tx), Some(handle))
        };
        let mut senders = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for i in 0..shards {
            let detectors = build(&mut specs.iter().filter(|s| !s.cross_trace))?;
            let (tx, rx) = channel();
            let shard = Shard {
                window: TraceWindow::new(per_shard),
                analyzer: Analyzer::new(detectors, settings.stamp.clone())
                    .with_green(settings.green.clone()),
                scratch: Default::default(),
                cross: cross_tx.clone(),
                rx,
                admission: admission.clone(),
                metrics: metrics.clone(),
                sink: sink.clone(),
                retained: explain::RetainedTraces::new(settings.retained_traces.div_ceil(shards)),
                pending: Default::default(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || {
                    priority::lower_current_thread();
                    shard.run()
                })?;
            senders.push(tx);
            threads.push(handle);
        }
        Ok(Self {
            senders,
            threads: Mutex::new(threads),
            cross: Mutex::new(cross_thread),
            admission,
        })
    }

    /// Number of shards.
    /// The trace `trace_id` as a span tree, from the shard that owns it;
    /// `None` when it is neither in the window nor retained.
    pub async fn explain(
        &self,
        trace_id: detector_api::TraceId,
    ) -> Result<Option<explain::ExplainedTrace>, ShardsStopped> {
        let shard = crate::ingest::convert::shard_of(&trace_id, self.senders.len());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.senders[shard]
            .send(ShardMsg::Explain { trace_id, reply })
            .map_err(|_| ShardsStopped)?;
        answer.await.map_err(|_| ShardsStopped)
    }

    pub fn shard_count(&self) -> usize {
        self.senders.len()
    }

    /// Hands admitted fragments to their shards: `per_shard[i]` goes to
    /// shard `i`. Fails only once the shards have stopped (shutdown past its
    /// grace period), so the caller can refuse the request as retryable.
    pub fn dispatch(&self, per_shard: Vec<Vec<TraceFragment>>) -> Result<(), ShardsStopped> {
        let mut result = Ok(());
        for (tx, fragments) in self.senders.iter().zip(per_shard) {
            if fragments.is_empty() {
                continue;
            }
            let spans = fragments.iter().map(|f| f.spans.len()).sum();
            if let Err(e) = tx.send(ShardMsg::Batch { fragments, spans }) {
                // The shard is gone: give the room back.
                if let ShardMsg::Batch { spans, .. } = e.0 {
                    self.admission.release(spans);
                }
                result = Err(ShardsStopped);
            }
        }
        result
    }

    /// Tells every shard to analyze what it holds and stop, and waits.
    pub fn shutdown(&self) {
        for tx in &self.senders {
            let _ = tx.send(ShardMsg::Shutdown);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("an analysis shard panicked during shutdown");
            }
        }
        // The shards held the cross-trace stage's senders; it drains and ends.
        let cross = self.cross.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Err(_)) = cross.map(JoinHandle::join) {
            tracing::error!("the cross-trace stage panicked during shutdown");
        }
    }
}
