//! Channel to role mapping (being written).
