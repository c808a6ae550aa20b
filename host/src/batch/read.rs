//! Reading the whole input into assembled traces, on every core: one thread
//! cuts the input into chunks of elements, worker threads parse and convert
//! them, and the calling thread merges their fragments into traces in input
//! order. Channels are bounded, so a slow stage holds the others back
//! instead of piling chunks up in memory.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::assemble::Traces;
use super::decode::{Decoded, decode};
use super::error::InputError;
use super::split::{Chunk, Format, Splitter};
use crate::ingest::convert::ConvertLimits;

/// Chunks (or decoded chunks) waiting per worker.
const QUEUE: usize = 2;

/// What the whole input gave.
pub struct ReadOutcome {
    pub traces: Traces,
    pub format: Format,
    /// Top-level JSON values (more than one: NDJSON).
    pub values: u64,
    pub bytes: u64,
    pub rejected_invalid_id: usize,
    pub truncated_strings: usize,
    pub dropped_attributes: usize,
}

/// How to read.
#[derive(Debug, Clone, Copy)]
pub struct ReadSettings {
    pub max_element: usize,
    pub max_spans_per_trace: usize,
    pub workers: usize,
}

/// Reads `reader` to its end.
pub fn read(reader: impl Read + Send, settings: ReadSettings) -> Result<ReadOutcome, InputError> {
    let workers = settings.workers.max(1);
    let limits = ConvertLimits::default();
    std::thread::scope(|scope| {
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(workers * (QUEUE + 1));
        let mut to_workers: Vec<SyncSender<(Format, Chunk)>> = Vec::new();
        let mut from_workers: Vec<Receiver<Result<Decoded, InputError>>> = Vec::new();
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = sync_channel::<(Format, Chunk)>(QUEUE);
            let (done_tx, done_rx) = sync_channel(QUEUE);
            let spare = spare_tx.clone();
            std::thread::Builder::new()
                .name("analyze-parse".into())
                .spawn_scoped(scope, move || {
                    for (format, chunk) in chunk_rx {
                        let decoded = decode(format, &chunk, &limits);
                        // Back to the splitter for the next chunk; dropped
                        // when it has enough.
                        let _ = spare.try_send(chunk.bytes);
                        if done_tx.send(decoded).is_err() {
                            break;
                        }
                    }
                })
                .map_err(InputError::Read)?;
            to_workers.push(chunk_tx);
            from_workers.push(done_rx);
        }
        drop(spare_tx);
        let splitter = std::thread::Builder::new()
            .name("analyze-split".into())
            .spawn_scoped(scope, move || {
                split(reader, settings.max_element, to_workers, spare_rx)
            })
            .map_err(InputError::Read)?;
        let mut traces = Traces::new(settings.max_spans_per_trace);
        let mut totals = (0, 0, 0);
        let mut failed = None;
        // Round robin, as the splitter dealt: input order.
        'merge: for n in 0.. {
            match from_workers[n % workers].recv() {
                Ok(Ok(decoded)) => {
                    totals.0 += decoded.rejected_invalid_id;
                    totals.1 += decoded.truncated_strings;
                    totals.2 += decoded.dropped_attributes;
                    for fragment in &decoded.fragments {
                        traces.add(fragment);
                    }
                }
                Ok(Err(e)) => {
                    failed = Some(e);
                    break 'merge;
                }
                Err(_) => break 'merge,
            }
        }
        // Stops the workers, and through them the splitter, on an error.
        drop(from_workers);
        let split = splitter
            .join()
            .map_err(|_| InputError::Read(std::io::Error::other("the input reader panicked")))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let (format, values, bytes) = split?;
        Ok(ReadOutcome {
            traces,
            format,
            values,
            bytes,
            rejected_invalid_id: totals.0,
            truncated_strings: totals.1,
            dropped_attributes: totals.2,
        })
    })
}

/// The splitter thread: deals chunks to the workers in turn.
fn split(
    reader: impl Read,
    max_element: usize,
    workers: Vec<SyncSender<(Format, Chunk)>>,
    spare: Receiver<Vec<u8>>,
) -> Result<(Format, u64, u64), InputError> {
    let mut splitter = Splitter::new(reader, max_element);
    let mut n = 0;
    loop {
        while let Ok(bytes) = spare.try_recv() {
            splitter.recycle(bytes);
        }
        let Some(chunk) = splitter.next_chunk()? else {
            break;
        };
        let format = splitter.format().unwrap_or(Format::Otlp);
        if workers[n % workers.len()].send((format, chunk)).is_err() {
            // The merger stopped on an error of its own; it reports that.
            break;
        }
        n += 1;
    }
    Ok((
        splitter.format().unwrap_or(Format::Otlp),
        splitter.values(),
        splitter.bytes_read(),
    ))
}
