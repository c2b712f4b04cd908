//! DICTIONARY (spec §11.6). Placeholder.
use crate::error::Result;
pub(crate) fn encode(_v: &[Vec<u8>], _out: &mut Vec<u8>) {}
pub(crate) fn decode(_input: &[u8], _n: usize) -> Result<Vec<Vec<u8>>> { Err(crate::Error::Unsupported("dictionary not yet implemented".into())) }
