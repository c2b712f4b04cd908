//! Query surfaces (placeholder).
