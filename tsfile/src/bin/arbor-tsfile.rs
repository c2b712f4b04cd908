//! `arbor-tsfile`: inspect, dump and write Apache TsFiles.
//!
//! Exit codes: 0 success, 1 a file could not be read or written, 2 bad
//! input (bad CSV, bad arguments).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tsfile::csv_io::{dump, write_csv, CsvWriteOptions, WriteCsvError};
use tsfile::metadata::{IndexKey, IndexNode, IndexNodeType};
use tsfile::{Compression, DataType, Encoding, Statistics, TsFileReader, ValueStatistics};

#[derive(Parser)]
#[command(name = "arbor-tsfile", version, about = "Inspect, dump and write Apache TsFiles (format version 4)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the file's structure: devices, series, chunk groups, chunks, pages, index.
    Inspect { file: PathBuf },
    /// Print every point as CSV: device,measurement,data_type,time,value.
    Dump { file: PathBuf },
    /// Read CSV (the dump format) from stdin and write a TsFile.
    Write {
        out: PathBuf,
        /// UNCOMPRESSED, SNAPPY, GZIP, LZ4 or ZSTD.
        #[arg(long, default_value = "LZ4")]
        compression: String,
        /// TYPE=ENCODING, e.g. DOUBLE=GORILLA; repeatable. Default: smallest lossless.
        #[arg(long = "encoding")]
        encodings: Vec<String>,
        /// Write every device as an aligned device.
        #[arg(long)]
        aligned: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { file } => report(inspect(&file)),
        Command::Dump { file } => report(TsFileReader::open(&file).and_then(|r| dump(&r, std::io::stdout().lock()))),
        Command::Write { out, compression, encodings, aligned } => {
            let options = match write_options(&compression, &encodings, aligned) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("arbor-tsfile: {e}");
                    return ExitCode::from(2);
                }
            };
            match write_csv(std::io::stdin().lock(), &out, &options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(WriteCsvError::Input(e)) => {
                    eprintln!("arbor-tsfile: bad CSV on stdin: {e}");
                    ExitCode::from(2)
                }
                Err(WriteCsvError::Output(e)) => {
                    eprintln!("arbor-tsfile: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn report(result: tsfile::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arbor-tsfile: {e}");
            ExitCode::from(1)
        }
    }
}

fn write_options(compression: &str, encodings: &[String], aligned: bool) -> Result<CsvWriteOptions, String> {
    let compression: Compression = compression.parse().map_err(|e: tsfile::Error| e.to_string())?;
    if !Compression::WRITABLE.contains(&compression) {
        return Err(format!("cannot write {compression} compression"));
    }
    let mut map = BTreeMap::new();
    for spec in encodings {
        let (t, e) = spec.split_once('=').ok_or_else(|| format!("--encoding expects TYPE=ENCODING, got {spec:?}"))?;
        let t: DataType = t.parse().map_err(|e: tsfile::Error| e.to_string())?;
        let e: Encoding = e.parse().map_err(|e: tsfile::Error| e.to_string())?;
        tsfile::encoding::check_writable(e, t).map_err(|e| e.to_string())?;
        map.insert(t, e);
    }
    Ok(CsvWriteOptions { compression, encodings: map, aligned, ..Default::default() })
}

fn stats_text(s: &Statistics) -> String {
    let mut out = format!("count={} time=[{}, {}]", s.count, s.start_time, s.end_time);
    let bin = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let part = match &s.values {
        ValueStatistics::Boolean { first, last, sum } => format!(" first={first} last={last} sum={sum}"),
        ValueStatistics::Int32 { min, max, first, last, sum } => format!(" min={min} max={max} first={first} last={last} sum={sum}"),
        ValueStatistics::Int64 { min, max, first, last, sum } => format!(" min={min} max={max} first={first} last={last} sum={sum:?}"),
        ValueStatistics::Float { min, max, first, last, sum } => format!(" min={min:?} max={max:?} first={first:?} last={last:?} sum={sum:?}"),
        ValueStatistics::Double { min, max, first, last, sum } => format!(" min={min:?} max={max:?} first={first:?} last={last:?} sum={sum:?}"),
        ValueStatistics::Text { first, last } => format!(" first={} last={}", bin(first), bin(last)),
        ValueStatistics::String { first, last, min, max } => format!(" first={} last={} min={} max={}", bin(first), bin(last), bin(min), bin(max)),
        ValueStatistics::Blob | ValueStatistics::Time => String::new(),
    };
    out.push_str(&part);
    out
}

fn print_node<R: tsfile::reader::ReadAt>(r: &TsFileReader<R>, node: &IndexNode, depth: usize, out: &mut impl Write) -> tsfile::Result<()> {
    let pad = "  ".repeat(depth + 1);
    let w = |e: std::io::Error| tsfile::Error::io("<stdout>", e);
    writeln!(out, "{pad}{:?} entries={} end_offset={}", node.node_type, node.entries.len(), node.end_offset).map_err(w)?;
    for i in 0..node.entries.len() {
        let (start, end) = node.child_range(i);
        let key = match &node.entries[i].key {
            IndexKey::Device(d) => d.to_string(),
            IndexKey::Measurement(m) => format!("{m:?}"),
        };
        writeln!(out, "{pad}  [{i}] {key} -> [{start}, {end})").map_err(w)?;
        match node.node_type {
            IndexNodeType::InternalDevice => print_node(r, &r.index_node(start, end, true)?, depth + 2, out)?,
            IndexNodeType::LeafDevice | IndexNodeType::InternalMeasurement => {
                print_node(r, &r.index_node(start, end, false)?, depth + 2, out)?
            }
            IndexNodeType::LeafMeasurement => {}
        }
    }
    Ok(())
}

fn inspect(path: &PathBuf) -> tsfile::Result<()> {
    let r = TsFileReader::open(path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let w = |e: std::io::Error| tsfile::Error::io("<stdout>", e);
    let meta = r.metadata();
    writeln!(out, "file: {}", path.display()).map_err(w)?;
    writeln!(out, "version: {}", r.version()).map_err(w)?;
    writeln!(out, "size: {} bytes", r.file_len()).map_err(w)?;
    writeln!(out, "meta_offset: {}", meta.meta_offset).map_err(w)?;
    match &meta.bloom_filter {
        Some(b) => writeln!(out, "bloom_filter: {} bits, {} hash functions, {} bytes", b.size_in_bits(), b.hash_count(), b.size_in_bits().div_ceil(8)),
        None => writeln!(out, "bloom_filter: none"),
    }
    .map_err(w)?;
    for (k, v) in &meta.properties {
        writeln!(out, "property: {k} = {}", v.as_deref().unwrap_or("null")).map_err(w)?;
    }
    for (name, schema) in &meta.table_schemas {
        let cols: Vec<String> = schema.columns.iter().map(|c| format!("{} {} {:?}", c.name, c.data_type, c.category)).collect();
        writeln!(out, "table schema {name}: {}", cols.join(", ")).map_err(w)?;
    }

    writeln!(out, "\ndevices:").map_err(w)?;
    for d in r.all_device_metadata()? {
        writeln!(out, "  {} ({})", d.device, if d.aligned { "aligned" } else { "non-aligned" }).map_err(w)?;
        for s in &d.series {
            let name = if s.data_type == DataType::Vector { "(time)".to_string() } else { s.measurement.clone() };
            let first = match s.chunks.first() {
                Some(c) => Some(r.read_chunk(c.offset_of_chunk_header)?.header),
                None => None,
            };
            let (enc, comp) = first.map_or(("-".into(), "-".into()), |h| (h.encoding.to_string(), h.compression.to_string()));
            writeln!(out, "    {name}: {} encoding={enc} compression={comp} chunks={} {}", s.data_type, s.chunks.len(), stats_text(&s.statistics)).map_err(w)?;
        }
    }

    writeln!(out, "\nchunk groups:").map_err(w)?;
    for g in r.chunk_groups()? {
        writeln!(out, "  @{} device {} ({} chunks)", g.offset, g.device, g.chunks.len()).map_err(w)?;
        for (offset, h) in &g.chunks {
            let chunk = r.read_chunk(*offset)?;
            let name = if h.measurement.is_empty() { "(time)" } else { &h.measurement };
            writeln!(
                out,
                "    chunk @{offset} {name} {:?} {} {} {} data_size={} pages={}",
                h.kind, h.data_type, h.encoding, h.compression, h.data_size, chunk.pages.len()
            )
            .map_err(w)?;
            for (i, p) in chunk.pages.iter().enumerate() {
                let stats = p.header.statistics.as_ref().map(stats_text).unwrap_or_else(|| "(statistics in chunk metadata)".into());
                if p.header.is_empty_page() {
                    writeln!(out, "      page {i} @{} empty", p.offset).map_err(w)?;
                } else {
                    writeln!(out, "      page {i} @{} uncompressed={} compressed={} {stats}", p.offset, p.header.uncompressed_size, p.header.compressed_size).map_err(w)?;
                }
            }
        }
    }

    writeln!(out, "\nindex:").map_err(w)?;
    for (table, root) in &meta.table_roots {
        writeln!(out, "  table {table:?}").map_err(w)?;
        print_node(&r, root, 1, &mut out)?;
    }
    out.flush().map_err(w)?;
    Ok(())
}
