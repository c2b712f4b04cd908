//! FLOAT/DOUBLE over TS_2DIFF or RLE (spec §11.3). Placeholder.
use crate::error::Result;
use crate::types::Encoding;
pub(crate) fn encode_f32(_v: &[f32], _inner: Encoding, _mpn: u32, _out: &mut Vec<u8>) {}
pub(crate) fn encode_f64(_v: &[f64], _inner: Encoding, _mpn: u32, _out: &mut Vec<u8>) {}
pub(crate) fn decode_f32(_input: &[u8], _inner: Encoding, _n: usize) -> Result<Vec<f32>> { Err(crate::Error::Unsupported("float not yet implemented".into())) }
pub(crate) fn decode_f64(_input: &[u8], _inner: Encoding, _n: usize) -> Result<Vec<f64>> { Err(crate::Error::Unsupported("float not yet implemented".into())) }
