//! ts2diff (spec §11). Placeholder until implemented.
use crate::error::Result;
pub(crate) fn encode_i32(_v: &[i32], _out: &mut Vec<u8>) {}
pub(crate) fn decode_i32(_input: &[u8], _n: usize) -> Result<Vec<i32>> { Err(crate::Error::Unsupported("ts2diff not yet implemented".into())) }
pub(crate) fn encode_i64(_v: &[i64], _out: &mut Vec<u8>) {}
pub(crate) fn decode_i64(_input: &[u8], _n: usize) -> Result<Vec<i64>> { Err(crate::Error::Unsupported("ts2diff not yet implemented".into())) }
pub(crate) fn decode_i64_all(_input: &[u8]) -> Result<Vec<i64>> { Err(crate::Error::Unsupported("ts2diff not yet implemented".into())) }
