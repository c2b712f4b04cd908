//! Writing TsFiles (spec §2, §4, §6–§10): chunk groups of non-aligned or
//! aligned devices, pages split by point and byte thresholds, exact
//! statistics, the metadata index tree, bloom filter and tail.
//!
//! The writer streams the data region to its output and keeps only chunk
//! metadata in memory; [`TsFileWriter::finish`] writes the index region.

use std::collections::BTreeMap;
use std::io::Write;

use crate::bloom::BloomFilter;
use crate::compression::{compress, compress_chosen};
use crate::device::{compare_java_strings, DeviceId};
use crate::encoding::{self, EncodeOptions};
use crate::error::{Error, Result};
use crate::io::ByteWriter;
use crate::metadata::*;
use crate::statistics::Statistics;
use crate::types::{Compression, DataType, Encoding, Values};

/// Writer thresholds; the defaults are Apache TsFile's.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Points per page at most.
    pub page_max_points: usize,
    /// Encoded page body bytes at most (a page is split until it fits).
    pub page_max_bytes: usize,
    /// Children per metadata index node.
    pub max_degree: usize,
    pub bloom_error_rate: f64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            page_max_points: 10_000,
            page_max_bytes: 64 * 1024,
            max_degree: 256,
            bloom_error_rate: 0.05,
        }
    }
}

/// How one series is stored. `encoding: None` asks for the smallest
/// lossless encoding, chosen per chunk; `compression: None` lets that
/// choice also pick the page codec (LZ4, or ZSTD where it is clearly
/// smaller). With an explicit encoding, no codec given means LZ4.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSchema {
    pub measurement: String,
    pub data_type: DataType,
    pub encoding: Option<Encoding>,
    pub compression: Option<Compression>,
    pub encode_options: EncodeOptions,
}

impl SeriesSchema {
    pub fn new(measurement: impl Into<String>, data_type: DataType) -> Self {
        SeriesSchema {
            measurement: measurement.into(),
            data_type,
            encoding: None,
            compression: None,
            encode_options: EncodeOptions::default(),
        }
    }

    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }
}

/// One non-aligned series' points for one chunk: strictly increasing times.
#[derive(Debug, Clone, Copy)]
pub struct SeriesChunk<'a> {
    pub schema: &'a SeriesSchema,
    pub times: &'a [i64],
    pub values: &'a Values,
}

/// One column of an aligned chunk group. `validity[i]` says whether row `i`
/// has a value; `values` holds the present values only. `None` = all present.
#[derive(Debug, Clone, Copy)]
pub struct AlignedColumn<'a> {
    pub schema: &'a SeriesSchema,
    pub values: &'a Values,
    pub validity: Option<&'a [bool]>,
}

struct SeriesIndex {
    data_type: DataType,
    kind: ChunkKind,
    /// Encoding and compression of the series' first chunk in this file.
    codec: (Encoding, Compression),
    chunks: Vec<ChunkMetadata>,
}

struct DeviceIndex {
    aligned: bool,
    series: BTreeMap<String, SeriesIndex>,
}

/// Counts bytes so chunk offsets are known without seeking.
struct Counting<W: Write> {
    inner: W,
    pos: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner
            .write_all(bytes)
            .map_err(|e| Error::io("<tsfile output>", e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Streams a TsFile to `W`.
pub struct TsFileWriter<W: Write> {
    out: Counting<W>,
    options: WriterOptions,
    devices: BTreeMap<DeviceId, DeviceIndex>,
    scratch: Vec<u8>,
}

/// A page ready to be written: header fields and compressed body.
struct EncodedPage {
    uncompressed_size: u32,
    body: Vec<u8>,
    statistics: Statistics,
}

fn check_times(times: &[i64], what: &str) -> Result<()> {
    if let Some(w) = times.windows(2).find(|w| w[1] <= w[0]) {
        return Err(Error::InvalidWrite(format!(
            "{what}: times must strictly increase, got {} then {}",
            w[0], w[1]
        )));
    }
    Ok(())
}

/// Page boundaries by point count.
fn page_ranges(n: usize, max_points: usize) -> Vec<std::ops::Range<usize>> {
    let max = max_points.max(1);
    (0..n.div_ceil(max))
        .map(|i| i * max..((i + 1) * max).min(n))
        .collect()
}

impl<W: Write> TsFileWriter<W> {
    pub fn new(out: W, options: WriterOptions) -> Result<Self> {
        let mut out = Counting { inner: out, pos: 0 };
        out.put(MAGIC)?;
        out.put(&[VERSION])?;
        Ok(TsFileWriter {
            out,
            options,
            devices: BTreeMap::new(),
            scratch: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.out.pos
    }

    fn device_entry(&mut self, device: &DeviceId, aligned: bool) -> Result<&mut DeviceIndex> {
        let entry = self
            .devices
            .entry(device.clone())
            .or_insert_with(|| DeviceIndex {
                aligned,
                series: BTreeMap::new(),
            });
        if entry.aligned != aligned {
            return Err(Error::InvalidWrite(format!(
                "device {device} is written both aligned and non-aligned"
            )));
        }
        Ok(entry)
    }

    fn record_chunk(
        &mut self,
        device: &DeviceId,
        measurement: &str,
        data_type: DataType,
        kind: ChunkKind,
        codec: (Encoding, Compression),
        meta: ChunkMetadata,
    ) -> Result<()> {
        let entry = self.device_entry(device, kind != ChunkKind::NonAligned)?;
        let series = entry
            .series
            .entry(measurement.to_string())
            .or_insert_with(|| SeriesIndex {
                data_type,
                kind,
                codec,
                chunks: Vec::new(),
            });
        if series.data_type != data_type {
            return Err(Error::InvalidWrite(format!(
                "series {device}.{measurement} written as {} and {data_type}",
                series.data_type
            )));
        }
        series.chunks.push(meta);
        Ok(())
    }

    /// The encoding and compression of a series' earlier chunks in this file.
    fn earlier_codec(&self, device: &DeviceId, measurement: &str) -> Option<(Encoding, Compression)> {
        self.devices.get(device)?.series.get(measurement).map(|s| s.codec)
    }

    fn write_chunk_group_header(&mut self, device: &DeviceId) -> Result<()> {
        self.scratch.clear();
        self.scratch.put_u8(MARKER_CHUNK_GROUP_HEADER);
        device.serialize(&mut self.scratch);
        let bytes = std::mem::take(&mut self.scratch);
        self.out.put(&bytes)?;
        self.scratch = bytes;
        Ok(())
    }

    /// Write one chunk group of a non-aligned device: one chunk per series.
    pub fn write_chunk_group(&mut self, device: &DeviceId, series: &[SeriesChunk<'_>]) -> Result<()> {
        for s in series {
            check_times(s.times, &format!("{device}.{}", s.schema.measurement))?;
            if s.values.len() != s.times.len() {
                return Err(Error::InvalidWrite(format!(
                    "{device}.{}: {} times but {} values",
                    s.schema.measurement,
                    s.times.len(),
                    s.values.len()
                )));
            }
        }
        self.device_entry(device, false)?;
        self.write_chunk_group_header(device)?;
        for s in series.iter().filter(|s| !s.times.is_empty()) {
            let earlier = self.earlier_codec(device, &s.schema.measurement);
            let codec = resolve_encoding(s.schema, s.values, self.options.page_max_points, earlier)?;
            let pages = self.encode_non_aligned_pages(s, &codec)?;
            let offset = self.out.pos;
            let stats = self.write_chunk(&s.schema.measurement, ChunkKind::NonAligned, s.schema.data_type, codec.compression, codec.encoding, &pages)?;
            self.record_chunk(
                device,
                &s.schema.measurement,
                s.schema.data_type,
                ChunkKind::NonAligned,
                (codec.encoding, codec.compression),
                ChunkMetadata {
                    offset_of_chunk_header: offset,
                    statistics: stats,
                },
            )?;
        }
        Ok(())
    }

    fn encode_non_aligned_pages(&self, s: &SeriesChunk<'_>, codec: &ChunkCodec) -> Result<Vec<EncodedPage>> {
        let mut pages = Vec::new();
        let mut pending: Vec<std::ops::Range<usize>> = page_ranges(s.times.len(), self.options.page_max_points);
        pending.reverse();
        while let Some(range) = pending.pop() {
            let times = &s.times[range.clone()];
            let values = s.values.slice(range.clone());
            let mut time_buf = Vec::with_capacity(times.len() + 32);
            encoding::encode_times(times, &mut time_buf);
            let mut body = Vec::with_capacity(time_buf.len() + values.len() * 2 + 8);
            body.put_uvarint(time_buf.len() as u32);
            body.extend_from_slice(&time_buf);
            encoding::encode(codec.encoding, s.schema.data_type, &values, &codec.options, &mut body)?;
            if body.len() > self.options.page_max_bytes && range.len() > 1 {
                // Too big: split in half and encode each half as its own page.
                let mid = range.start + range.len() / 2;
                pending.push(mid..range.end);
                pending.push(range.start..mid);
                continue;
            }
            let statistics = Statistics::from_points(s.schema.data_type, times, Some(&values));
            pages.push(self.compress_page(codec, body, statistics)?);
        }
        Ok(pages)
    }

    fn compress_page(&self, codec: &ChunkCodec, body: Vec<u8>, statistics: Statistics) -> Result<EncodedPage> {
        let uncompressed_size = body.len() as u32;
        let body = if codec.compression == Compression::Uncompressed {
            body
        } else {
            let mut packed = Vec::with_capacity(body.len() / 2 + 16);
            if codec.chosen {
                compress_chosen(codec.compression, &body, &mut packed)?;
            } else {
                compress(codec.compression, &body, &mut packed)?;
            }
            packed
        };
        Ok(EncodedPage {
            uncompressed_size,
            body,
            statistics,
        })
    }

    /// Write a chunk header and its pages; returns the chunk's statistics.
    fn write_chunk(
        &mut self,
        measurement: &str,
        kind: ChunkKind,
        data_type: DataType,
        compression: Compression,
        encoding: Encoding,
        pages: &[EncodedPage],
    ) -> Result<Statistics> {
        let multi_page = pages.len() > 1;
        let mut data = Vec::with_capacity(pages.iter().map(|p| p.body.len() + 64).sum());
        let mut stats = Statistics::empty(data_type);
        for p in pages {
            let empty = p.statistics.count == 0 && kind == ChunkKind::AlignedValue;
            let header = PageHeader {
                uncompressed_size: if empty { 0 } else { p.uncompressed_size },
                compressed_size: p.body.len() as u32,
                statistics: multi_page.then(|| p.statistics.clone()),
            };
            header.serialize(&mut data);
            if !empty {
                data.extend_from_slice(&p.body);
            }
            stats.merge(&p.statistics);
        }
        let header = ChunkHeader {
            kind,
            multi_page,
            measurement: measurement.to_string(),
            data_size: data.len() as u32,
            data_type,
            compression,
            encoding,
        };
        self.scratch.clear();
        header.serialize(&mut self.scratch);
        let head = std::mem::take(&mut self.scratch);
        self.out.put(&head)?;
        self.scratch = head;
        self.out.put(&data)?;
        Ok(stats)
    }

    /// Write one chunk group of an aligned device: a time chunk, then one
    /// value chunk per column, with pages covering the same rows.
    pub fn write_aligned_chunk_group(
        &mut self,
        device: &DeviceId,
        times: &[i64],
        columns: &[AlignedColumn<'_>],
    ) -> Result<()> {
        check_times(times, &device.to_string())?;
        for c in columns {
            let present = c.validity.map_or(times.len(), |v| v.iter().filter(|b| **b).count());
            if c.validity.is_some_and(|v| v.len() != times.len()) || present != c.values.len() {
                return Err(Error::InvalidWrite(format!(
                    "{device}.{}: validity and values do not match {} rows",
                    c.schema.measurement,
                    times.len()
                )));
            }
        }
        self.device_entry(device, true)?;
        if times.is_empty() {
            return Ok(());
        }
        self.write_chunk_group_header(device)?;
        let ranges = page_ranges(times.len(), self.options.page_max_points);

        let mut time_pages = Vec::with_capacity(ranges.len());
        for r in &ranges {
            let mut body = Vec::new();
            encoding::encode_times(&times[r.clone()], &mut body);
            let stats = Statistics::from_points(DataType::Vector, &times[r.clone()], None);
            time_pages.push(self.compress_page(&TIME_CODEC, body, stats)?);
        }
        let offset = self.out.pos;
        let stats = self.write_chunk("", ChunkKind::AlignedTime, DataType::Vector, Compression::Lz4, Encoding::Ts2Diff, &time_pages)?;
        self.record_chunk(device, "", DataType::Vector, ChunkKind::AlignedTime, (TIME_CODEC.encoding, TIME_CODEC.compression), ChunkMetadata { offset_of_chunk_header: offset, statistics: stats })?;

        for c in columns {
            let earlier = self.earlier_codec(device, &c.schema.measurement);
            let codec = resolve_encoding(c.schema, c.values, self.options.page_max_points, earlier)?;
            let mut pages = Vec::with_capacity(ranges.len());
            let mut value_start = 0;
            for r in &ranges {
                let rows = r.len();
                let (page_times, present) = match c.validity {
                    None => (times[r.clone()].to_vec(), rows),
                    Some(v) => {
                        let t: Vec<i64> = r.clone().filter(|&i| v[i]).map(|i| times[i]).collect();
                        let n = t.len();
                        (t, n)
                    }
                };
                let values = c.values.slice(value_start..value_start + present);
                value_start += present;
                let mut body = Vec::with_capacity(rows / 8 + present * 2 + 8);
                body.put_i32(rows as i32);
                let mut bitmap = vec![0u8; rows.div_ceil(8)];
                for (j, i) in r.clone().enumerate() {
                    if c.validity.is_none_or(|v| v[i]) {
                        bitmap[j / 8] |= 0x80 >> (j % 8);
                    }
                }
                body.extend_from_slice(&bitmap);
                encoding::encode(codec.encoding, c.schema.data_type, &values, &codec.options, &mut body)?;
                let stats = Statistics::from_points(c.schema.data_type, &page_times, Some(&values));
                pages.push(self.compress_page(&codec, body, stats)?);
            }
            let offset = self.out.pos;
            let stats = self.write_chunk(&c.schema.measurement, ChunkKind::AlignedValue, c.schema.data_type, codec.compression, codec.encoding, &pages)?;
            self.record_chunk(device, &c.schema.measurement, c.schema.data_type, ChunkKind::AlignedValue, (codec.encoding, codec.compression), ChunkMetadata { offset_of_chunk_header: offset, statistics: stats })?;
        }
        Ok(())
    }

    /// Write the index region and tail; returns the output.
    pub fn finish(mut self) -> Result<W> {
        // Like the C++ writer: an (unused) plan index range, then the separator.
        let mut range = vec![MARKER_OPERATION_INDEX_RANGE];
        range.extend_from_slice(&[0u8; 16]);
        self.out.put(&range)?;
        let meta_offset = self.out.pos;
        self.out.put(&[MARKER_SEPARATOR])?;
        let degree = self.options.max_degree.max(2);
        let n_series: usize = self.devices.values().map(|d| d.series.len()).sum();
        let mut bloom = BloomFilter::with_capacity(n_series, self.options.bloom_error_rate);

        let devices = std::mem::take(&mut self.devices);
        let mut device_roots: Vec<(DeviceId, IndexNode)> = Vec::with_capacity(devices.len());
        for (device, index) in devices {
            let mut series: Vec<(String, SeriesIndex)> = index.series.into_iter().collect();
            series.sort_by(|a, b| compare_java_strings(&a.0, &b.0));
            let device_str = device.to_string();
            let mut leaves: Vec<IndexNode> = Vec::new();
            let mut leaf = IndexNode { entries: Vec::new(), end_offset: 0, node_type: IndexNodeType::LeafMeasurement };
            for (i, (name, s)) in series.into_iter().enumerate() {
                if i % degree == 0 {
                    if leaf.entries.len() == degree {
                        leaf.end_offset = self.out.pos;
                        leaves.push(std::mem::replace(&mut leaf, IndexNode { entries: Vec::new(), end_offset: 0, node_type: IndexNodeType::LeafMeasurement }));
                    }
                    leaf.entries.push(IndexEntry { key: IndexKey::Measurement(name.clone()), offset: self.out.pos });
                }
                let mut statistics = Statistics::empty(s.data_type);
                for c in &s.chunks {
                    statistics.merge(&c.statistics);
                }
                let kind = if index.aligned && s.kind == ChunkKind::NonAligned { ChunkKind::AlignedValue } else { s.kind };
                let tsm = TimeseriesMetadata { measurement: name.clone(), data_type: s.data_type, kind, statistics, chunks: s.chunks };
                self.scratch.clear();
                tsm.serialize(&mut self.scratch);
                let bytes = std::mem::take(&mut self.scratch);
                self.out.put(&bytes)?;
                self.scratch = bytes;
                bloom.add(format!("{device_str}.{name}").as_bytes());
            }
            leaf.end_offset = self.out.pos;
            leaves.push(leaf);
            let root = self.build_levels(leaves, IndexNodeType::InternalMeasurement, degree)?;
            device_roots.push((device, root));
        }

        // Device level, per table (segment 0).
        let mut tables: BTreeMap<String, Vec<(DeviceId, IndexNode)>> = BTreeMap::new();
        for (d, root) in device_roots {
            tables.entry(d.table_name().to_string()).or_default().push((d, root));
        }
        let mut table_roots = BTreeMap::new();
        for (table, devices) in tables {
            let mut entries = Vec::with_capacity(devices.len());
            for (d, root) in devices {
                entries.push(IndexEntry { key: IndexKey::Device(d), offset: self.out.pos });
                self.write_node(&root)?;
            }
            let end = self.out.pos;
            let mut leaves = Vec::new();
            for (i, chunk) in entries.chunks(degree).enumerate() {
                let end_offset = entries.get((i + 1) * degree).map_or(end, |e| e.offset);
                leaves.push(IndexNode { entries: chunk.to_vec(), end_offset, node_type: IndexNodeType::LeafDevice });
            }
            let root = self.build_levels(leaves, IndexNodeType::InternalDevice, degree)?;
            table_roots.insert(table, root);
        }

        let meta = TsFileMetadata {
            table_roots,
            table_schemas: BTreeMap::new(),
            meta_offset,
            bloom_filter: Some(bloom),
            properties: TsFileMetadata::default_properties(),
        };
        let mut tail = Vec::new();
        meta.serialize(&mut tail);
        let len = tail.len() as i32;
        tail.put_i32(len);
        tail.extend_from_slice(MAGIC);
        self.out.put(&tail)?;
        self.out.inner.flush().map_err(|e| Error::io("<tsfile output>", e))?;
        Ok(self.out.inner)
    }

    fn write_node(&mut self, node: &IndexNode) -> Result<()> {
        self.scratch.clear();
        node.serialize(&mut self.scratch);
        let bytes = std::mem::take(&mut self.scratch);
        self.out.put(&bytes)?;
        self.scratch = bytes;
        Ok(())
    }

    /// Group nodes into internal nodes until one remains (spec §7 step 2);
    /// every child is written as its parent is formed. The root is returned
    /// unwritten.
    fn build_levels(&mut self, mut level: Vec<IndexNode>, internal: IndexNodeType, degree: usize) -> Result<IndexNode> {
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(degree));
            let mut iter = level.into_iter().peekable();
            while iter.peek().is_some() {
                let mut parent = IndexNode { entries: Vec::with_capacity(degree), end_offset: 0, node_type: internal };
                for child in iter.by_ref().take(degree) {
                    let key = child.entries[0].key.clone();
                    parent.entries.push(IndexEntry { key, offset: self.out.pos });
                    self.write_node(&child)?;
                }
                parent.end_offset = self.out.pos;
                next.push(parent);
            }
            level = next;
        }
        level
            .pop()
            .ok_or_else(|| Error::InvalidWrite("empty index level".into()))
    }
}

/// How one chunk's pages are encoded and compressed.
struct ChunkCodec {
    encoding: Encoding,
    options: EncodeOptions,
    compression: Compression,
    /// The writer picked the codec: compress as [`compress_chosen`] does.
    chosen: bool,
}

/// Aligned time chunks: TS_2DIFF under LZ4, like Apache's writers.
const TIME_CODEC: ChunkCodec = ChunkCodec {
    encoding: Encoding::Ts2Diff,
    options: EncodeOptions { max_point_number: 2, ts2diff_layout: encoding::Ts2DiffLayout::Blocks },
    compression: Compression::Lz4,
    chosen: false,
};

/// Codecs the automatic choice weighs when the schema names none.
const AUTO_COMPRESSIONS: [Compression; 2] = [Compression::Lz4, Compression::Zstd];

/// The encoding, options and codec a chunk uses: the schema's, or the
/// automatic choice made on the chunk's first page. A series that already
/// has chunks in the file (`earlier`) keeps their encoding and compression
/// whenever that encoding stores this chunk losslessly: Apache's C++ reader
/// (tsfile 2.5.0) decodes every chunk of a series in a file with the first
/// chunk's decoder and decompressor, so a series whose chunks differ there
/// fails to read ("TsFile is corrupted", "Failed to decode data").
fn resolve_encoding(schema: &SeriesSchema, values: &Values, page_points: usize, earlier: Option<(Encoding, Compression)>) -> Result<ChunkCodec> {
    match schema.encoding {
        Some(e) => {
            encoding::check_writable(e, schema.data_type)?;
            Ok(ChunkCodec {
                encoding: e,
                options: schema.encode_options,
                compression: schema.compression.unwrap_or(Compression::Lz4),
                chosen: false,
            })
        }
        None => {
            let sample = values.slice(0..values.len().min(page_points.max(1)));
            let compressions = schema.compression.as_ref().map_or(&AUTO_COMPRESSIONS[..], std::slice::from_ref);
            let kept = earlier
                .filter(|(_, c)| compressions.contains(c))
                .and_then(|(e, c)| encoding::choose_among(schema.data_type, &[e], &sample, values, &[c]));
            let choice = kept.unwrap_or_else(|| encoding::choose(schema.data_type, &sample, values, compressions));
            Ok(ChunkCodec {
                encoding: choice.encoding,
                options: choice.options,
                compression: choice.compression,
                chosen: schema.compression.is_none(),
            })
        }
    }
}
