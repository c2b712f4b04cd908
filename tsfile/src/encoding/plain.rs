//! PLAIN (spec §11.1). Placeholder until implemented.
use crate::error::Result;
use crate::types::{DataType, Values};
pub(crate) fn encode(_values: &Values, _out: &mut Vec<u8>) {}
pub(crate) fn decode(_t: DataType, _input: &[u8], _n: usize) -> Result<Values> { Err(crate::Error::Unsupported("PLAIN not yet implemented".into())) }
