//! The PostgreSQL surface (placeholder until implemented).
