//! Running calls through the stages.
//!
//! [`call`] takes one file through decode → roles/resample → VAD → whisper with models that a
//! worker loaded once ([`call::Worker`]). Batch and live reuse the same worker.

pub mod analyze;
pub mod batch;
pub mod call;
