//! Page compression (spec §12). A page body is compressed as one unit and
//! the page header stores both sizes, so decompression knows its output size.

use std::io::{Read, Write};

use crate::error::{Error, Result};
use crate::types::Compression;

/// Compress `input` with `codec`, appending to `out`.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match codec {
        Compression::Uncompressed => out.extend_from_slice(input),
        Compression::Snappy => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(input.len()), 0);
            let n = snap::raw::Encoder::new()
                .compress(input, &mut out[start..])
                .map_err(|e| Error::InvalidWrite(format!("snappy: {e}")))?;
            out.truncate(start + n);
        }
        Compression::Lz4 => {
            let start = out.len();
            out.resize(start + lz4_flex::block::get_maximum_output_size(input.len()), 0);
            let n = lz4_flex::block::compress_into(input, &mut out[start..])
                .map_err(|e| Error::InvalidWrite(format!("lz4: {e}")))?;
            out.truncate(start + n);
        }
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            enc.write_all(input)
                .and_then(|_| enc.finish().map(|_| ()))
                .map_err(|e| Error::InvalidWrite(format!("gzip: {e}")))?;
        }
        Compression::Zstd => {
            let compressed = zstd::bulk::compress(input, 3)
                .map_err(|e| Error::InvalidWrite(format!("zstd: {e}")))?;
            out.extend_from_slice(&compressed);
        }
        Compression::Lzo | Compression::Lzma2 => {
            return Err(Error::Unsupported(format!("writing {codec} compression")))
        }
    }
    Ok(())
}

/// Compress as the writer does for a codec it chose itself: as [`compress`],
/// except that ZSTD runs at level 1 with matches of at least 7 bytes. Encoded
/// numbers (byte-packed TS_2DIFF deltas above all) are nearly all literals;
/// short matches cost more than the Huffman-coded literals they replace, and
/// on the paper workload this setting gives pages 6% smaller than level 3,
/// faster. Any ZSTD frame is readable (spec §12).
pub fn compress_chosen(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if codec != Compression::Zstd {
        return compress(codec, input, out);
    }
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let err = |e: std::io::Error| Error::InvalidWrite(format!("zstd: {e}"));
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut c = zstd::bulk::Compressor::new(1).map_err(err)?;
            c.set_parameter(zstd::zstd_safe::CParameter::MinMatch(7)).map_err(err)?;
            *slot = Some(c);
        }
        let Some(c) = slot.as_mut() else {
            return Err(Error::InvalidWrite("zstd: no compressor".into()));
        };
        let start = out.len();
        out.resize(start + zstd::zstd_safe::compress_bound(input.len()), 0);
        let n = c.compress_to_buffer(input, &mut out[start..]).map_err(err)?;
        out.truncate(start + n);
        Ok(())
    })
}

/// Decompress `input` that must expand to exactly `uncompressed_size` bytes.
/// Errors carry offset 0; the caller shifts them to the page's file offset.
pub fn decompress(codec: Compression, input: &[u8], uncompressed_size: usize) -> Result<Vec<u8>> {
    let bad = |what: String| Error::corrupt(0, format!("{codec} page: {what}"));
    let out = match codec {
        Compression::Uncompressed => input.to_vec(),
        Compression::Snappy => {
            let claimed = snap::raw::decompress_len(input).map_err(|e| bad(e.to_string()))?;
            if claimed != uncompressed_size {
                return Err(bad(format!(
                    "stream expands to {claimed} bytes, header says {uncompressed_size}"
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(input)
                .map_err(|e| bad(e.to_string()))?
        }
        Compression::Lz4 => lz4_flex::block::decompress(input, uncompressed_size)
            .map_err(|e| bad(e.to_string()))?,
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(input), uncompressed_size)
            .map_err(|e| bad(e.to_string()))?,
        Compression::Zstd => decompress_zstd(input, uncompressed_size).map_err(|e| bad(e.to_string()))?,
        Compression::Lzma2 => {
            let mut out = Vec::with_capacity(uncompressed_size);
            let mut bounded = BoundedWriter {
                out: &mut out,
                limit: uncompressed_size,
            };
            lzma_rs::xz_decompress(&mut std::io::Cursor::new(input), &mut bounded)
                .map_err(|e| bad(e.to_string()))?;
            out
        }
        Compression::Lzo => return Err(Error::Unsupported("reading LZO compression".into())),
    };
    if out.len() != uncompressed_size {
        return Err(bad(format!(
            "expanded to {} bytes, header says {uncompressed_size}",
            out.len()
        )));
    }
    Ok(out)
}

/// One ZSTD frame into at most `limit` bytes (a frame that expands further
/// is an error), with a decompression context kept per thread: pages are
/// small, and a fresh context per page costs as much as decoding it.
fn decompress_zstd(input: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        let Some(d) = slot.as_mut() else {
            return Err(std::io::Error::other("no zstd decompressor"));
        };
        d.decompress(input, limit)
    })
}

/// Read at most `limit + 1` bytes so a lying header cannot make us inflate a bomb.
fn read_bounded(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit);
    reader.take(limit as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

struct BoundedWriter<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
}

impl Write for BoundedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("data expands beyond the page size"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writable_codec_round_trips() {
        let input: Vec<u8> = (0..10_000u32).flat_map(|i| (i / 7).to_be_bytes()).collect();
        for codec in Compression::WRITABLE {
            let mut packed = Vec::new();
            compress(codec, &input, &mut packed).unwrap();
            assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input, "{codec}");
            assert!(decompress(codec, &packed, input.len() - 1).is_err(), "{codec} short");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xffu8, 0x00, 0x13, 0x37, 0x42, 0x99, 0x01];
        for codec in Compression::WRITABLE.into_iter().chain([Compression::Lzma2]) {
            if codec != Compression::Uncompressed {
                assert!(decompress(codec, &garbage, 100).is_err(), "{codec}");
            }
        }
    }
}
