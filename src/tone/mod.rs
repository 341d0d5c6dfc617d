//! Agent tone (being written).
