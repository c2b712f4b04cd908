//! The storage engine (placeholder).
