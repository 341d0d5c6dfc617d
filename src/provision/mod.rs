//! CTranslate2 → ggml conversion and model provisioning (being written).
