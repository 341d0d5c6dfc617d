//! Running calls through the stages.
//!
//! - [`session`]: one call, frames in, typed events out — the only place that knows the order of
//!   the stages; a recording is "push the file, finish" ([`session::analyze_recording`]);
//! - [`events`]: the events and the [`events::CallSink`] seam every consumer implements;
//! - [`sinks`]: the consumers: the store's writer, an in-memory list, a channel, a tee;
//! - [`call`]: a worker's models, loaded once and reused for every call;
//! - [`analyze`]: the tone and rubric stages as plain functions (also used by `rescore`);
//! - [`batch`]: many recordings in parallel, resumable, into the caller's sinks;
//! - [`distributed`]: many machines: calls enqueued in PostgreSQL, claimed by queue workers under
//!   leases, each stored exactly once;
//! - [`identity`]: call keys, audio hashes and the models key that decide what is stale.

pub mod analyze;
pub mod batch;
pub mod call;
pub mod distributed;
pub mod events;
pub mod identity;
pub mod session;
pub mod sinks;
