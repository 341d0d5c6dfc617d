//! Resample to 16 kHz (being written).
