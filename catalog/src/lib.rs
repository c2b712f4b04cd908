//! The series tree (placeholder).
