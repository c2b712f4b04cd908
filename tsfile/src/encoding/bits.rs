//! MSB-first bit reader/writer shared by GORILLA and CHIMP. Placeholder.
