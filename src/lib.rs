//! # callqc — full-volume quality inspection of hotline calls, on your own machines
//!
//! (Layout section is completed as modules land.)

pub mod audio;
pub mod onnx;
pub mod provision;
pub mod tone;
