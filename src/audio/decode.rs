//! Decode WAV files (being written).
