//! # callqc — full-volume quality inspection of hotline calls, on your own machines
//!
//! (Layout section is completed as modules land.)

pub mod asr;
pub mod audio;
pub mod eval;
pub mod onnx;
pub mod pipeline;
pub mod provision;
pub mod rubric;
pub mod settings;
pub mod store;

pub mod text;
pub mod tone;
pub mod vad;
