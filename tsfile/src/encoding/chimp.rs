//! chimp (spec §11). Placeholder until implemented.
use crate::error::Result;
pub(crate) fn encode_i32(_v: &[i32], _out: &mut Vec<u8>) {}
pub(crate) fn decode_i32(_input: &[u8], _n: usize) -> Result<Vec<i32>> { Err(crate::Error::Unsupported("chimp not yet implemented".into())) }
pub(crate) fn encode_i64(_v: &[i64], _out: &mut Vec<u8>) {}
pub(crate) fn decode_i64(_input: &[u8], _n: usize) -> Result<Vec<i64>> { Err(crate::Error::Unsupported("chimp not yet implemented".into())) }
pub(crate) fn encode_f32(_v: &[f32], _out: &mut Vec<u8>) {}
pub(crate) fn decode_f32(_input: &[u8], _n: usize) -> Result<Vec<f32>> { Err(crate::Error::Unsupported("chimp not yet implemented".into())) }
pub(crate) fn encode_f64(_v: &[f64], _out: &mut Vec<u8>) {}
pub(crate) fn decode_f64(_input: &[u8], _n: usize) -> Result<Vec<f64>> { Err(crate::Error::Unsupported("chimp not yet implemented".into())) }
