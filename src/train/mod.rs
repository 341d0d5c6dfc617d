//! Training workflows: they read corpora and the store and write model files, so they sit above
//! the models they train (`rubric`, `tone`) and nothing below imports them.
//!
//! - [`sentences`]: the learned 禁语 sentence scorer (`callqc rules train`, `callqc rules learn`);
//! - [`tone`]: the tone model's agitation weights refitted from trainers' verdicts (`callqc tone fit`).

pub mod sentences;
pub mod tone;
