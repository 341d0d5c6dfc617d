//! What trainers and QC leads take away from the store: per-call export folders
//! ([`export`]) and the period report ([`figures`] computes, [`page`] draws). Both read the store
//! through [`crate::store::Store`] only, so they work for batch and live calls alike.

pub mod export;
pub mod figures;
pub mod html;
pub mod page;
pub mod svg;
