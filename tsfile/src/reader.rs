//! Reading TsFiles (spec §2–§8, §15): validate magic and tail, walk the
//! metadata index, and decode series or aligned devices over a time range
//! into columnar batches, skipping chunks and pages by their statistics.
//!
//! Every offset and length read from the file is checked against the file
//! before use; damaged input yields [`Error::Corrupt`] naming file and offset.

use std::path::Path;

use crate::compression::decompress;
use crate::device::{compare_java_strings, DeviceId};
use crate::encoding;
use crate::error::{Error, Result};
use crate::io::ByteReader;
use crate::metadata::*;
use crate::statistics::Statistics;
use crate::types::{DataType, Encoding, Values};

/// Largest page body we agree to decompress; real pages are a few hundred KiB.
const MAX_PAGE_BYTES: u32 = 128 << 20;
/// Deepest index tree we follow; real trees are a handful of levels.
const MAX_INDEX_DEPTH: usize = 32;

/// Random-access byte source.
pub trait ReadAt {
    fn len(&self) -> u64;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReadAt for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = self
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// An inclusive time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    pub fn new(start: i64, end: i64) -> Self {
        TimeRange { start, end }
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }

    /// Whether statistics with points in `[s, e]` may hold points in range.
    pub fn overlaps(&self, stats: &Statistics) -> bool {
        stats.count > 0 && stats.start_time <= self.end && stats.end_time >= self.start
    }

    /// Whether every point described by `stats` lies inside the range.
    pub fn covers(&self, stats: &Statistics) -> bool {
        self.start <= stats.start_time && stats.end_time <= self.end
    }
}

/// One page of a non-aligned series, or the present rows of an aligned column.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesBatch {
    pub times: Vec<i64>,
    pub values: Values,
}

/// A column of an aligned batch: `validity[i]` tells whether row `i` has a
/// value; `values` holds the present values in row order.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBatch {
    pub values: Values,
    pub validity: Vec<bool>,
}

/// Rows of an aligned device: one time column and the requested columns.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedBatch {
    pub times: Vec<i64>,
    pub columns: Vec<ColumnBatch>,
}

/// The index entries of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMetadata {
    pub device: DeviceId,
    pub aligned: bool,
    /// For aligned devices the first entry is the time column (`""`).
    pub series: Vec<TimeseriesMetadata>,
}

impl DeviceMetadata {
    pub fn series(&self, measurement: &str) -> Option<&TimeseriesMetadata> {
        self.series.iter().find(|s| s.measurement == measurement && (s.data_type != DataType::Vector))
    }

    pub fn time_column(&self) -> Option<&TimeseriesMetadata> {
        self.series.iter().find(|s| s.data_type == DataType::Vector)
    }

    /// Value series (all but the aligned time column).
    pub fn value_series(&self) -> impl Iterator<Item = &TimeseriesMetadata> {
        self.series.iter().filter(|s| s.data_type != DataType::Vector)
    }
}

/// A page located in the file, not yet decompressed.
#[derive(Debug, Clone, PartialEq)]
pub struct PageInfo {
    pub header: PageHeader,
    /// File offset of the page header.
    pub offset: u64,
    /// File offset of the (compressed) body.
    pub body_offset: u64,
}

/// A chunk: its header and the pages that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub offset: u64,
    pub header: ChunkHeader,
    pub header_size: u64,
    pub pages: Vec<PageInfo>,
    data: Vec<u8>,
    data_offset: u64,
}

impl Chunk {
    fn body(&self, page: &PageInfo) -> &[u8] {
        let start = (page.body_offset - self.data_offset) as usize;
        &self.data[start..start + page.header.compressed_size as usize]
    }

    /// The decompressed body of a page.
    pub fn page_bytes(&self, page: &PageInfo) -> Result<Vec<u8>> {
        if page.header.is_empty_page() {
            return Ok(Vec::new());
        }
        decompress(
            self.header.compression,
            self.body(page),
            page.header.uncompressed_size as usize,
        )
        .map_err(|e| e.in_page(page.body_offset))
    }
}

/// A TsFile opened for reading.
pub struct TsFileReader<R: ReadAt = std::fs::File> {
    source: R,
    name: String,
    len: u64,
    version: u8,
    metadata: TsFileMetadata,
}

impl TsFileReader<std::fs::File> {
    /// Open and validate the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        TsFileReader::new(file, path.display().to_string())
    }
}

impl<R: ReadAt> TsFileReader<R> {
    /// Validate head, tail and TsFileMetadata of `source`, named `name` in errors.
    pub fn new(source: R, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        Self::new_inner(source, &name).map_err(|e| e.in_file(&name))
    }

    fn new_inner(source: R, name: &str) -> Result<Self> {
        let len = source.len();
        let min_len = (MAGIC.len() * 2 + 1 + 4) as u64;
        if len < min_len {
            return Err(Error::corrupt(len, format!("file is {len} bytes, shorter than any TsFile ({min_len})")));
        }
        let mut reader = TsFileReader {
            source,
            name: name.to_string(),
            len,
            version: 0,
            metadata: TsFileMetadata {
                table_roots: Default::default(),
                table_schemas: Default::default(),
                meta_offset: 0,
                bloom_filter: None,
                properties: Vec::new(),
            },
        };
        let head = reader.read_bytes(0, 7)?;
        if &head[..6] != MAGIC {
            return Err(Error::corrupt(0, "wrong magic: not a TsFile"));
        }
        reader.version = head[6];
        if reader.version != 3 && reader.version != 4 {
            return Err(Error::corrupt(6, format!("unsupported TsFile version {}", head[6])));
        }
        let tail = reader.read_bytes(len - 10, 10)?;
        if &tail[4..] != MAGIC {
            return Err(Error::corrupt(len - 6, "missing tail magic: the file is incomplete or damaged"));
        }
        let meta_size = i32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if meta_size <= 0 || meta_size as u64 > len - min_len {
            return Err(Error::corrupt(len - 10, format!("absurd TsFileMetadata size {meta_size}")));
        }
        let meta_start = len - 10 - meta_size as u64;
        let bytes = reader.read_bytes(meta_start, meta_size as usize)?;
        let mut r = ByteReader::at(&bytes, meta_start);
        let metadata = TsFileMetadata::deserialize(&mut r, reader.version)?;
        if metadata.meta_offset < 7 || metadata.meta_offset >= meta_start {
            return Err(Error::corrupt(meta_start, format!("metaOffset {} outside the file", metadata.meta_offset)));
        }
        let sep = reader.read_bytes(metadata.meta_offset, 1)?;
        if sep[0] != MARKER_SEPARATOR {
            return Err(Error::corrupt(metadata.meta_offset, "no separator at metaOffset"));
        }
        for (k, v) in &metadata.properties {
            if k == "encryptLevel" && v.as_deref().is_some_and(|l| l != "0") {
                return Err(Error::Unsupported(format!("{name}: encrypted TsFile (level {v:?})")));
            }
        }
        reader.metadata = metadata;
        Ok(reader)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn file_len(&self) -> u64 {
        self.len
    }

    pub fn metadata(&self) -> &TsFileMetadata {
        &self.metadata
    }

    fn read_bytes(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Err(Error::corrupt(offset, format!("range of {len} bytes runs past the end of the file ({} bytes)", self.len)));
        }
        let mut buf = vec![0u8; len];
        self.source
            .read_at(offset, &mut buf)
            .map_err(|e| Error::corrupt(offset, format!("read failed: {e}")))?;
        Ok(buf)
    }

    /// Bytes of `[start, end)`, which must lie inside the index region.
    fn index_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let region_end = self.len - 10;
        if start <= self.metadata.meta_offset || end < start || end > region_end || end - start > (1 << 30) {
            return Err(Error::corrupt(start, format!("index range [{start}, {end}) outside the index region")));
        }
        self.read_bytes(start, (end - start) as usize)
    }

    fn read_node(&self, start: u64, end: u64, device_level: bool) -> Result<IndexNode> {
        let bytes = self.index_range(start, end)?;
        IndexNode::deserialize(&mut ByteReader::at(&bytes, start), device_level, self.version == 3)
    }

    /// Every device with the byte range of its measurement root node.
    fn device_roots(&self) -> Result<Vec<(DeviceId, u64, u64)>> {
        let mut out = Vec::new();
        for root in self.metadata.table_roots.values() {
            self.collect_devices(root, 0, &mut out)?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn collect_devices(&self, node: &IndexNode, depth: usize, out: &mut Vec<(DeviceId, u64, u64)>) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::corrupt(node.end_offset, "metadata index tree too deep (a cycle?)"));
        }
        for i in 0..node.entries.len() {
            let (start, end) = node.child_range(i);
            match (&node.node_type, &node.entries[i].key) {
                (IndexNodeType::LeafDevice, IndexKey::Device(d)) => out.push((d.clone(), start, end)),
                (IndexNodeType::InternalDevice, _) => {
                    let child = self.read_node(start, end, true)?;
                    self.collect_devices(&child, depth + 1, out)?;
                }
                _ => return Err(Error::corrupt(start, "measurement node where a device node belongs")),
            }
        }
        Ok(())
    }

    /// All devices in the file, in device order.
    pub fn devices(&self) -> Result<Vec<DeviceId>> {
        self.device_roots()
            .map(|v| v.into_iter().map(|(d, _, _)| d).collect())
            .map_err(|e| e.in_file(&self.name))
    }

    /// Find one device's measurement root by binary search down the device index.
    fn find_device(&self, device: &DeviceId) -> Result<Option<(u64, u64)>> {
        let Some(mut node) = self.metadata.table_roots.get(device.table_name()).cloned().or_else(|| {
            (self.version == 3).then(|| self.metadata.table_roots.values().next().cloned()).flatten()
        }) else {
            return Ok(None);
        };
        for _ in 0..MAX_INDEX_DEPTH {
            let key_of = |e: &IndexEntry| match &e.key {
                IndexKey::Device(d) => Some(d.clone()),
                IndexKey::Measurement(_) => None,
            };
            let idx = node.entries.partition_point(|e| key_of(e).is_some_and(|d| d <= *device));
            if idx == 0 {
                return Ok(None);
            }
            let (start, end) = node.child_range(idx - 1);
            match node.node_type {
                IndexNodeType::LeafDevice => {
                    return Ok((key_of(&node.entries[idx - 1]).as_ref() == Some(device)).then_some((start, end)));
                }
                IndexNodeType::InternalDevice => node = self.read_node(start, end, true)?,
                _ => return Err(Error::corrupt(start, "measurement node where a device node belongs")),
            }
        }
        Err(Error::corrupt(0, "metadata index tree too deep (a cycle?)"))
    }

    /// Index entries of `device`, or `None` if the file does not hold it.
    pub fn device_metadata(&self, device: &DeviceId) -> Result<Option<DeviceMetadata>> {
        let inner = || -> Result<Option<DeviceMetadata>> {
            let Some((start, end)) = self.find_device(device)? else {
                return Ok(None);
            };
            self.load_device(device.clone(), start, end).map(Some)
        };
        inner().map_err(|e| e.in_file(&self.name))
    }

    /// Index entries of every device, in device order.
    pub fn all_device_metadata(&self) -> Result<Vec<DeviceMetadata>> {
        let inner = || -> Result<Vec<DeviceMetadata>> {
            self.device_roots()?
                .into_iter()
                .map(|(d, s, e)| self.load_device(d, s, e))
                .collect()
        };
        inner().map_err(|e| e.in_file(&self.name))
    }

    fn load_device(&self, device: DeviceId, start: u64, end: u64) -> Result<DeviceMetadata> {
        let root = self.read_node(start, end, false)?;
        let mut series = Vec::new();
        self.collect_series(&root, 0, &mut series)?;
        let aligned = root
            .entries
            .first()
            .is_some_and(|e| e.key == IndexKey::Measurement(String::new()));
        if aligned {
            for s in series.iter_mut().filter(|s| s.data_type != DataType::Vector) {
                s.kind = ChunkKind::AlignedValue;
            }
        }
        Ok(DeviceMetadata { device, aligned, series })
    }

    fn collect_series(&self, node: &IndexNode, depth: usize, out: &mut Vec<TimeseriesMetadata>) -> Result<()> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::corrupt(node.end_offset, "metadata index tree too deep (a cycle?)"));
        }
        for i in 0..node.entries.len() {
            let (start, end) = node.child_range(i);
            match node.node_type {
                IndexNodeType::LeafMeasurement => {
                    let bytes = self.index_range(start, end)?;
                    let mut r = ByteReader::at(&bytes, start);
                    while !r.is_empty() {
                        out.push(TimeseriesMetadata::deserialize(&mut r)?);
                    }
                }
                IndexNodeType::InternalMeasurement => {
                    let child = self.read_node(start, end, false)?;
                    self.collect_series(&child, depth + 1, out)?;
                }
                _ => return Err(Error::corrupt(start, "device node where a measurement node belongs")),
            }
        }
        Ok(())
    }

    /// Parse the chunk whose header is at `offset`, with its page headers.
    pub fn read_chunk(&self, offset: u64) -> Result<Chunk> {
        self.read_chunk_inner(offset).map_err(|e| e.in_file(&self.name))
    }

    fn read_chunk_inner(&self, offset: u64) -> Result<Chunk> {
        let limit = self.metadata.meta_offset;
        if offset < 7 || offset >= limit {
            return Err(Error::corrupt(offset, format!("chunk offset {offset} outside the data region")));
        }
        let window = (limit - offset).min(64 * 1024) as usize;
        let head = self.read_bytes(offset, window)?;
        let mut r = ByteReader::at(&head, offset);
        let header = ChunkHeader::deserialize(&mut r)?;
        let header_size = r.position() as u64;
        let data_offset = offset + header_size;
        if data_offset + u64::from(header.data_size) > limit {
            return Err(Error::corrupt(offset, format!("chunk of {} bytes runs into the index region", header.data_size)));
        }
        let data = self.read_bytes(data_offset, header.data_size as usize)?;
        let mut r = ByteReader::at(&data, data_offset);
        let mut pages = Vec::new();
        while !r.is_empty() {
            let page_offset = r.offset();
            let page_header = PageHeader::deserialize(&mut r, header.data_type, header.multi_page)?;
            if page_header.uncompressed_size > MAX_PAGE_BYTES {
                return Err(Error::corrupt(page_offset, format!("absurd page size {}", page_header.uncompressed_size)));
            }
            let body_offset = r.offset();
            r.skip(page_header.compressed_size as usize)?;
            pages.push(PageInfo { header: page_header, offset: page_offset, body_offset });
        }
        Ok(Chunk { offset, header, header_size, pages, data, data_offset })
    }

    /// Statistics of a page: its own, or the chunk's for a single-page chunk.
    fn page_statistics<'a>(page: &'a PageInfo, chunk_stats: &'a Statistics) -> &'a Statistics {
        page.header.statistics.as_ref().unwrap_or(chunk_stats)
    }

    fn decode_non_aligned_page(&self, chunk: &Chunk, page: &PageInfo) -> Result<SeriesBatch> {
        let body = chunk.page_bytes(page)?;
        let decode = || -> Result<SeriesBatch> {
            let mut r = ByteReader::new(&body);
            let time_len = r.length(1)?;
            let times = encoding::decode_times(r.bytes(time_len)?)?;
            let values = encoding::decode(chunk.header.encoding, chunk.header.data_type, r.rest(), times.len())?;
            Ok(SeriesBatch { times, values })
        };
        decode().map_err(|e| e.in_page(page.body_offset))
    }

    fn decode_time_page(&self, chunk: &Chunk, page: &PageInfo) -> Result<Vec<i64>> {
        let body = chunk.page_bytes(page)?;
        let decode = || -> Result<Vec<i64>> {
            match chunk.header.encoding {
                // Apache readers always assume TS_2DIFF; honour PLAIN when a writer says so.
                Encoding::Plain => match encoding::decode(Encoding::Plain, DataType::Int64, &body, body.len() / 8)? {
                    Values::Int64(v) => Ok(v),
                    _ => Err(Error::corrupt(0, "time page did not decode to integers")),
                },
                _ => encoding::decode_times(&body),
            }
        };
        decode().map_err(|e| e.in_page(page.body_offset))
    }

    fn decode_value_page(&self, chunk: &Chunk, page: &PageInfo, rows: usize) -> Result<ColumnBatch> {
        self.decode_value_page_with(chunk, page, rows, true)
    }

    /// Which rows of an aligned value page have a value, without decoding
    /// the values (placeholders, see [`Self::read_aligned_rows_of`]).
    fn decode_value_bitmap(&self, chunk: &Chunk, page: &PageInfo, rows: usize) -> Result<ColumnBatch> {
        self.decode_value_page_with(chunk, page, rows, false)
    }

    fn decode_value_page_with(&self, chunk: &Chunk, page: &PageInfo, rows: usize, values: bool) -> Result<ColumnBatch> {
        if page.header.is_empty_page() {
            let empty = if values { Values::empty(chunk.header.data_type) } else { Values::Boolean(Vec::new()) };
            return Ok(ColumnBatch { values: empty, validity: vec![false; rows] });
        }
        let body = chunk.page_bytes(page)?;
        let decode = || -> Result<ColumnBatch> {
            let mut r = ByteReader::new(&body);
            let count = r.i32()?;
            if count < 0 || count as usize != rows {
                return Err(Error::corrupt(0, format!("value page has {count} rows, its time page {rows}")));
            }
            let bitmap = r.bytes(rows.div_ceil(8))?;
            let validity = unpack_bitmap(bitmap, rows);
            let present = validity.iter().filter(|b| **b).count();
            let values = match values {
                true => encoding::decode(chunk.header.encoding, chunk.header.data_type, r.rest(), present)?,
                false => Values::Boolean(vec![false; present]),
            };
            Ok(ColumnBatch { values, validity })
        };
        decode().map_err(|e| e.in_page(page.body_offset))
    }


    /// Points of a non-aligned series (or the present rows of one aligned
    /// column) in `range`, one batch per page read, chunks in file order.
    /// Chunks and pages whose statistics lie outside the range are skipped.
    pub fn read_series(&self, device: &DeviceId, measurement: &str, range: TimeRange) -> Result<Vec<SeriesBatch>> {
        let meta = self
            .device_metadata(device)?
            .ok_or_else(|| Error::SeriesNotFound(format!("{device} in {}", self.name)))?;
        self.read_series_of(&meta, measurement, range)
    }

    /// As [`Self::read_series`], for a device whose metadata is at hand.
    pub fn read_series_of(&self, meta: &DeviceMetadata, measurement: &str, range: TimeRange) -> Result<Vec<SeriesBatch>> {
        let series = meta
            .series(measurement)
            .ok_or_else(|| Error::SeriesNotFound(format!("{}.{measurement} in {}", meta.device, self.name)))?;
        if meta.aligned {
            let batches = self.read_aligned_of(meta, &[measurement], range)?;
            return Ok(batches
                .into_iter()
                .filter_map(|b| {
                    let col = b.columns.into_iter().next()?;
                    let times: Vec<i64> = b.times.iter().zip(&col.validity).filter(|(_, v)| **v).map(|(t, _)| *t).collect();
                    (!times.is_empty()).then_some(SeriesBatch { times, values: col.values })
                })
                .collect());
        }
        let inner = || -> Result<Vec<SeriesBatch>> {
            let mut out = Vec::new();
            for cm in series.chunks.iter().filter(|c| range.overlaps(&c.statistics)) {
                let chunk = self.read_chunk_inner(cm.offset_of_chunk_header)?;
                if chunk.header.data_type != series.data_type {
                    return Err(Error::corrupt(chunk.offset, "chunk data type differs from its series"));
                }
                for page in &chunk.pages {
                    let stats = Self::page_statistics(page, &cm.statistics);
                    if !range.overlaps(stats) {
                        continue;
                    }
                    let batch = self.decode_non_aligned_page(&chunk, page)?;
                    out.push(if range.covers(stats) { batch } else { trim(batch, range) });
                }
            }
            Ok(out)
        };
        inner().map_err(|e| e.in_file(&self.name))
    }

    /// Rows of an aligned device in `range` for the given columns (a column
    /// the device lacks is all null), one batch per time page read.
    pub fn read_aligned(&self, device: &DeviceId, measurements: &[&str], range: TimeRange) -> Result<Vec<AlignedBatch>> {
        let meta = self
            .device_metadata(device)?
            .ok_or_else(|| Error::SeriesNotFound(format!("{device} in {}", self.name)))?;
        self.read_aligned_of(&meta, measurements, range)
    }

    pub fn read_aligned_of(&self, meta: &DeviceMetadata, measurements: &[&str], range: TimeRange) -> Result<Vec<AlignedBatch>> {
        self.read_aligned_rows_of(meta, measurements, measurements.len(), range)
    }

    /// As [`Self::read_aligned_of`], decoding the values of the first
    /// `decoded` columns only. The other columns only make rows: they tell
    /// which rows they have a value in (their pages' bitmaps), with
    /// placeholder values, one `false` per present row, so that row
    /// operations keep them in step; in a chunk or page where a decoded column has a
    /// value in every row they are not read and show none. For a device
    /// table's rows, which every column makes but only the selected fill.
    pub fn read_aligned_rows_of(&self, meta: &DeviceMetadata, measurements: &[&str], decoded: usize, range: TimeRange) -> Result<Vec<AlignedBatch>> {
        let inner = || -> Result<Vec<AlignedBatch>> {
            let time = meta
                .time_column()
                .ok_or_else(|| Error::Unsupported(format!("{} is not an aligned device", meta.device)))?;
            let columns: Vec<Option<&TimeseriesMetadata>> = measurements.iter().map(|m| meta.series(m)).collect();
            let time_offsets: Vec<u64> = time.chunks.iter().map(|c| c.offset_of_chunk_header).collect();
            let mut out = Vec::new();
            for (ci, tcm) in time.chunks.iter().enumerate() {
                if !range.overlaps(&tcm.statistics) {
                    continue;
                }
                let next = time_offsets.get(ci + 1).copied().unwrap_or(u64::MAX);
                let time_chunk = self.read_chunk_inner(tcm.offset_of_chunk_header)?;
                // The value chunk of each column in this chunk group lies between
                // this time chunk and the next one.
                let metas: Vec<_> = columns
                    .iter()
                    .map(|col| {
                        col.and_then(|s| {
                            s.chunks.iter().find(|c| c.offset_of_chunk_header > tcm.offset_of_chunk_header && c.offset_of_chunk_header < next)
                        })
                    })
                    .collect();
                // A decoded column with a value in every row of the chunk
                // makes every row: the row-only columns' chunks are not read.
                let rows_made = metas[..decoded.min(metas.len())].iter().flatten().any(|c| c.statistics.count == tcm.statistics.count);
                let mut value_chunks = Vec::with_capacity(columns.len());
                let mut chunk_stats = Vec::with_capacity(columns.len());
                for (i, cm) in metas.into_iter().enumerate() {
                    let cm = cm.filter(|_| i < decoded || !rows_made);
                    chunk_stats.push(cm.map(|c| &c.statistics));
                    let vc = cm.map(|c| self.read_chunk_inner(c.offset_of_chunk_header)).transpose()?;
                    if let Some(vc) = &vc {
                        if !vc.pages.is_empty() && vc.pages.len() != time_chunk.pages.len() {
                            return Err(Error::corrupt(vc.offset, format!("value chunk has {} pages, its time chunk {}", vc.pages.len(), time_chunk.pages.len())));
                        }
                    }
                    value_chunks.push(vc);
                }
                for (pi, page) in time_chunk.pages.iter().enumerate() {
                    let stats = Self::page_statistics(page, &tcm.statistics);
                    if !range.overlaps(stats) {
                        continue;
                    }
                    let times = self.decode_time_page(&time_chunk, page)?;
                    let rows = times.len();
                    // Columns with a value in every row of the page, by its
                    // statistics. Such a row-only column is known without
                    // reading it; if a decoded one is, it makes every row
                    // and the row-only columns need not be read at all.
                    let full: Vec<bool> = value_chunks
                        .iter()
                        .zip(&chunk_stats)
                        .map(|(vc, cs)| match (vc, cs) {
                            (Some(vc), Some(cs)) if !vc.pages.is_empty() => Self::page_statistics(&vc.pages[pi], cs).count == rows as u64,
                            _ => false,
                        })
                        .collect();
                    let every_row = full[..decoded.min(full.len())].iter().any(|f| *f);
                    let mut cols = Vec::with_capacity(columns.len());
                    for (i, (col, vc)) in columns.iter().zip(&value_chunks).enumerate() {
                        let batch = match (col, vc) {
                            _ if i >= decoded && full[i] => ColumnBatch { values: Values::Boolean(vec![false; rows]), validity: vec![true; rows] },
                            _ if i >= decoded && every_row => ColumnBatch { values: Values::Boolean(Vec::new()), validity: vec![false; rows] },
                            (Some(_), Some(vc)) if !vc.pages.is_empty() && i >= decoded => self.decode_value_bitmap(vc, &vc.pages[pi], rows)?,
                            (Some(s), Some(vc)) if !vc.pages.is_empty() => self.decode_value_page(vc, &vc.pages[pi], rows)?,
                            (Some(s), _) => ColumnBatch { values: Values::empty(s.data_type), validity: vec![false; rows] },
                            (None, _) => ColumnBatch { values: Values::Int32(Vec::new()), validity: vec![false; rows] },
                        };
                        cols.push(batch);
                    }
                    let batch = AlignedBatch { times, columns: cols };
                    out.push(if range.covers(stats) { batch } else { trim_aligned(batch, range) });
                }
            }
            Ok(out)
        };
        inner().map_err(|e| e.in_file(&self.name))
    }
}

/// Keep only points whose time is in range.
fn trim(batch: SeriesBatch, range: TimeRange) -> SeriesBatch {
    let keep: Vec<usize> = (0..batch.times.len()).filter(|&i| range.contains(batch.times[i])).collect();
    if keep.len() == batch.times.len() {
        return batch;
    }
    let (a, b) = (keep.first().copied().unwrap_or(0), keep.last().map_or(0, |l| l + 1));
    // Times are sorted, so the kept points are one contiguous run.
    SeriesBatch { times: batch.times[a..b].to_vec(), values: batch.values.slice(a..b) }
}

fn trim_aligned(batch: AlignedBatch, range: TimeRange) -> AlignedBatch {
    let a = batch.times.partition_point(|t| *t < range.start);
    let b = batch.times.partition_point(|t| *t <= range.end);
    if a == 0 && b == batch.times.len() {
        return batch;
    }
    let columns = batch
        .columns
        .into_iter()
        .map(|c| {
            let skip = c.validity[..a].iter().filter(|v| **v).count();
            let take = c.validity[a..b].iter().filter(|v| **v).count();
            ColumnBatch { values: c.values.slice(skip..skip + take), validity: c.validity[a..b].to_vec() }
        })
        .collect();
    AlignedBatch { times: batch.times[a..b].to_vec(), columns }
}

/// Order measurement names as Apache does (UTF-16 code units).
pub fn sort_measurements(names: &mut [String]) {
    names.sort_by(|a, b| compare_java_strings(a, b));
}

/// A chunk group found by scanning the data region.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkGroupInfo {
    pub offset: u64,
    pub device: DeviceId,
    /// (offset, header) of every chunk in the group.
    pub chunks: Vec<(u64, ChunkHeader)>,
}

/// Scan the data region of `source` from the header up to the separator (or
/// `limit`), listing chunk groups and chunk headers. This also works on an
/// incomplete file without tail: scanning stops cleanly at the first
/// truncated structure and reports where the intact prefix ends.
pub fn scan_chunk_groups<R: ReadAt>(source: &R, limit: u64) -> (Vec<ChunkGroupInfo>, u64, Option<Error>) {
    let limit = limit.min(source.len());
    let mut groups: Vec<ChunkGroupInfo> = Vec::new();
    let mut pos = 7u64;
    let mut intact = pos;
    let read = |offset: u64, len: usize| -> Result<Vec<u8>> {
        if offset + len as u64 > limit {
            return Err(Error::corrupt(offset, "structure runs past the end of the data"));
        }
        let mut buf = vec![0u8; len];
        source.read_at(offset, &mut buf).map_err(|e| Error::corrupt(offset, format!("read failed: {e}")))?;
        Ok(buf)
    };
    let result = (|| -> Result<()> {
        while pos < limit {
            let window = read(pos, (limit - pos).min(64 * 1024) as usize)?;
            let mut r = ByteReader::at(&window, pos);
            match window[0] {
                MARKER_CHUNK_GROUP_HEADER => {
                    r.u8()?;
                    let device = DeviceId::deserialize(&mut r)?;
                    groups.push(ChunkGroupInfo { offset: pos, device, chunks: Vec::new() });
                    pos = r.offset();
                }
                MARKER_SEPARATOR => return Ok(()),
                MARKER_OPERATION_INDEX_RANGE => {
                    r.skip(17)?;
                    pos = r.offset();
                }
                _ => {
                    let header = ChunkHeader::deserialize(&mut r)?;
                    let end = r.offset() + u64::from(header.data_size);
                    if end > limit {
                        return Err(Error::corrupt(pos, "chunk runs past the end of the data"));
                    }
                    let group = groups
                        .last_mut()
                        .ok_or_else(|| Error::corrupt(pos, "chunk before any chunk group header"))?;
                    group.chunks.push((pos, header));
                    pos = end;
                }
            }
            intact = pos;
        }
        Ok(())
    })();
    (groups, intact, result.err())
}

impl<R: ReadAt> TsFileReader<R> {
    /// Chunk groups of the data region, in file order.
    pub fn chunk_groups(&self) -> Result<Vec<ChunkGroupInfo>> {
        let (groups, _, err) = scan_chunk_groups(&self.source, self.metadata.meta_offset);
        match err {
            Some(e) => Err(e.in_file(&self.name)),
            None => Ok(groups),
        }
    }

    /// Read the index node at `[start, end)` (for inspection tools).
    pub fn index_node(&self, start: u64, end: u64, device_level: bool) -> Result<IndexNode> {
        self.read_node(start, end, device_level).map_err(|e| e.in_file(&self.name))
    }

    /// Measurement root node range of `device`.
    pub fn device_root_range(&self, device: &DeviceId) -> Result<Option<(u64, u64)>> {
        self.find_device(device).map_err(|e| e.in_file(&self.name))
    }

    /// Decode every page of a chunk without time filtering (non-aligned or
    /// aligned-time chunks): returns times and, for non-aligned, values.
    pub fn decode_chunk(&self, chunk: &Chunk) -> Result<Vec<SeriesBatch>> {
        let inner = || -> Result<Vec<SeriesBatch>> {
            chunk
                .pages
                .iter()
                .map(|p| match chunk.header.kind {
                    ChunkKind::NonAligned => self.decode_non_aligned_page(chunk, p),
                    _ => Ok(SeriesBatch { times: self.decode_time_page(chunk, p)?, values: Values::Int64(Vec::new()) }),
                })
                .collect()
        };
        inner().map_err(|e| e.in_file(&self.name))
    }
}

/// Page-level access for engines that aggregate from page statistics and
/// decode only the pages they must, and for salvaging files without a tail.
impl<R: ReadAt> TsFileReader<R> {
    /// A reader over a file whose tail is missing or damaged (a crash
    /// leftover): only chunks in the data region `[7, data_end)` can be read
    /// (with [`Self::read_chunk`]) and decoded; the index is empty. Use
    /// [`scan_chunk_groups`] to find `data_end` and the chunk offsets.
    pub fn unsealed(source: R, name: impl Into<String>, data_end: u64) -> Result<Self> {
        let name = name.into();
        let len = source.len();
        let mut reader = TsFileReader {
            source,
            name: name.clone(),
            len,
            version: VERSION,
            metadata: TsFileMetadata {
                table_roots: Default::default(),
                table_schemas: Default::default(),
                meta_offset: data_end.min(len),
                bloom_filter: None,
                properties: Vec::new(),
            },
        };
        let head = reader.read_bytes(0, 7).map_err(|e| e.in_file(&name))?;
        if &head[..6] != MAGIC {
            return Err(Error::corrupt(0, "wrong magic: not a TsFile").in_file(&name));
        }
        reader.version = head[6];
        Ok(reader)
    }

    /// Decode page `index` of a non-aligned chunk (values and times), or of
    /// an aligned time chunk (times only; `values` is an empty INT64 column).
    pub fn decode_page(&self, chunk: &Chunk, index: usize) -> Result<SeriesBatch> {
        let page = chunk
            .pages
            .get(index)
            .ok_or_else(|| Error::corrupt(chunk.offset, format!("chunk has no page {index}")).in_file(&self.name))?;
        let batch = match chunk.header.kind {
            ChunkKind::NonAligned => self.decode_non_aligned_page(chunk, page),
            ChunkKind::AlignedTime => self
                .decode_time_page(chunk, page)
                .map(|times| SeriesBatch { times, values: Values::Int64(Vec::new()) }),
            ChunkKind::AlignedValue => Err(Error::Unsupported(
                "an aligned value page needs its time chunk: use decode_aligned_page".into(),
            )),
        };
        batch.map_err(|e| e.in_file(&self.name))
    }

    /// Decode page `index` of an aligned value chunk together with the same
    /// page of its time chunk: the present values and their times.
    pub fn decode_aligned_page(&self, time_chunk: &Chunk, value_chunk: &Chunk, index: usize) -> Result<SeriesBatch> {
        let inner = || -> Result<SeriesBatch> {
            let (Some(tp), Some(vp)) = (time_chunk.pages.get(index), value_chunk.pages.get(index)) else {
                return Err(Error::corrupt(value_chunk.offset, format!("aligned chunks have no page {index}")));
            };
            if vp.header.is_empty_page() {
                return Ok(SeriesBatch { times: Vec::new(), values: Values::empty(value_chunk.header.data_type) });
            }
            let times = self.decode_time_page(time_chunk, tp)?;
            let col = self.decode_value_page(value_chunk, vp, times.len())?;
            let times = times.iter().zip(&col.validity).filter(|(_, v)| **v).map(|(t, _)| *t).collect();
            Ok(SeriesBatch { times, values: col.values })
        };
        inner().map_err(|e| e.in_file(&self.name))
    }
}

/// The first `rows` bits of an aligned value page's bitmap (most
/// significant bit first). A column with a value in every row, the usual
/// case, is one fill instead of a test per bit.
fn unpack_bitmap(bitmap: &[u8], rows: usize) -> Vec<bool> {
    let full = rows / 8;
    let tail = rows % 8;
    let tail_mask = !(0xffu8 >> tail);
    if bitmap[..full].iter().all(|b| *b == 0xff) && (tail == 0 || bitmap[full] & tail_mask == tail_mask) {
        return vec![true; rows];
    }
    (0..rows).map(|i| bitmap[i / 8] & (0x80 >> (i % 8)) != 0).collect()
}

#[cfg(test)]
mod page_access_tests {
    use super::*;
    use crate::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};

    #[test]
    fn bitmaps_unpack_most_significant_bit_first() {
        assert_eq!(unpack_bitmap(&[0xff, 0xe0], 11), vec![true; 11]);
        assert_eq!(unpack_bitmap(&[0xff, 0xc0], 11), [vec![true; 10], vec![false]].concat());
        assert_eq!(unpack_bitmap(&[0xfe], 8), [vec![true; 7], vec![false]].concat());
        assert_eq!(unpack_bitmap(&[0x80, 0xff], 9), [vec![true], vec![false; 7], vec![true]].concat());
        assert_eq!(unpack_bitmap(&[0xff], 8), vec![true; 8]);
    }

    fn options() -> WriterOptions {
        WriterOptions { page_max_points: 4, ..WriterOptions::default() }
    }

    #[test]
    fn pages_decode_one_at_a_time_with_their_statistics() {
        let schema = SeriesSchema::new("s", DataType::Int64);
        let times: Vec<i64> = (0..10).collect();
        let values = Values::Int64((100..110).collect());
        let device = DeviceId::from_tree_path("root.sg.d1");
        let mut w = TsFileWriter::new(Vec::new(), options()).unwrap();
        w.write_chunk_group(&device, &[SeriesChunk { schema: &schema, times: &times, values: &values }]).unwrap();
        let bytes = w.finish().unwrap();
        let r = TsFileReader::new(bytes, "mem").unwrap();
        let meta = r.device_metadata(&device).unwrap().unwrap();
        let chunk = r.read_chunk(meta.series("s").unwrap().chunks[0].offset_of_chunk_header).unwrap();
        assert_eq!(chunk.pages.len(), 3);
        let page = r.decode_page(&chunk, 1).unwrap();
        assert_eq!(page.times, vec![4, 5, 6, 7]);
        assert_eq!(page.values, Values::Int64(vec![104, 105, 106, 107]));
        assert_eq!(chunk.pages[1].header.statistics.as_ref().unwrap().count, 4);
        assert!(r.decode_page(&chunk, 3).is_err());
    }

    #[test]
    fn aligned_pages_decode_with_their_time_page() {
        let schema = SeriesSchema::new("v", DataType::Int32);
        let times: Vec<i64> = (0..6).collect();
        let validity = [true, false, true, true, false, true];
        let values = Values::Int32(vec![0, 2, 3, 5]);
        let device = DeviceId::from_tree_path("root.sg.a");
        let mut w = TsFileWriter::new(Vec::new(), options()).unwrap();
        w.write_aligned_chunk_group(&device, &times, &[AlignedColumn { schema: &schema, values: &values, validity: Some(&validity) }]).unwrap();
        let bytes = w.finish().unwrap();
        let r = TsFileReader::new(bytes.clone(), "mem").unwrap();
        let meta = r.device_metadata(&device).unwrap().unwrap();
        let tc = r.read_chunk(meta.time_column().unwrap().chunks[0].offset_of_chunk_header).unwrap();
        let vc = r.read_chunk(meta.series("v").unwrap().chunks[0].offset_of_chunk_header).unwrap();
        let p1 = r.decode_aligned_page(&tc, &vc, 1).unwrap();
        assert_eq!(p1.times, vec![5]);
        assert_eq!(p1.values, Values::Int32(vec![5]));
        assert_eq!(r.decode_page(&tc, 0).unwrap().times, vec![0, 1, 2, 3]);

        // Without its tail the data region still decodes.
        let cut = bytes[..meta.time_column().unwrap().chunks[0].offset_of_chunk_header as usize + 200.min(bytes.len() / 2)].to_vec();
        let (groups, end, _) = scan_chunk_groups(&cut, u64::MAX);
        let u = TsFileReader::unsealed(cut, "cut", end).unwrap();
        for g in &groups {
            for (off, _) in &g.chunks {
                assert!(u.read_chunk(*off).is_ok());
            }
        }
    }
}
