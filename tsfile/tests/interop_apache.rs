//! Interop both ways with Apache TsFile (PyPI `tsfile==2.5.0`, C++ core),
//! driven through `tests/interop/apache_tsfile.py`:
//! - files Arbor writes for every type × every encoding Apache reads for that
//!   type × every compressor, aligned and non-aligned, multi-page and
//!   multi-chunk-group, are read by the Apache reader with identical values;
//! - files the Apache writer makes in the test are read by Arbor identically.
//!
//! Needs `scripts/install-test-deps.sh` (fails, saying so, without it).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tsfile::csv_io::dump;
use tsfile::writer::{AlignedColumn, SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
use tsfile::{Compression, DataType, DeviceId, Encoding, TsFileReader, Value, Values};

const COMPRESSIONS: [Compression; 5] = Compression::WRITABLE;

/// Encodings the Apache 2.5.0 reader decodes for each type (tests/interop/README.md,
/// apache_support.json) that Arbor writes.
fn apache_encodings(t: DataType) -> &'static [Encoding] {
    use Encoding::*;
    match t {
        DataType::Boolean | DataType::Blob => &[Plain],
        DataType::Int32 | DataType::Int64 => &[Plain, Rle, Ts2Diff, Gorilla, Zigzag, Chimp],
        DataType::Float | DataType::Double => &[Plain, Ts2Diff, Gorilla, Chimp],
        DataType::Text | DataType::String => &[Plain, Dictionary],
        DataType::Timestamp | DataType::Date => &[Plain, Rle, Ts2Diff, Gorilla, Chimp],
        DataType::Vector => &[],
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/apache_tsfile.py")
}

fn python() -> String {
    std::env::var("ARBOR_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn apache(args: &[&Path]) -> String {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "Apache tsfile helper failed ({}). Is `pip install tsfile==2.5.0` done (scripts/install-test-deps.sh)?\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Normalise floats by parsing and re-printing them: Python writes `1e+16`
/// where Rust writes `1e16`, and may pick another of two equally short
/// decimals for the same FLOAT bits.
fn normalise(csv_text: &str) -> Vec<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(csv_text.as_bytes());
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            let mut fields: Vec<String> = r.iter().map(String::from).collect();
            if let Ok(t @ (DataType::Float | DataType::Double)) = fields[2].parse::<DataType>() {
                let v = tsfile::text::parse_value(t, &fields[4]).unwrap();
                fields[4] = tsfile::text::format_value(t, &v);
            }
            fields
        })
        .collect()
}

fn our_dump(path: &Path) -> String {
    let mut out = Vec::new();
    dump(&TsFileReader::open(path).unwrap(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` values of `t` that `encoding` stores exactly, edge values included.
fn values_for(t: DataType, encoding: Encoding, n: usize, seed: u64) -> Values {
    let mut rng = Rng(seed | 1);
    let mut v = Values::with_capacity(t, n);
    let lossy_float = encoding == Encoding::Ts2Diff;
    for i in 0..n {
        let r = rng.next();
        let value = match t {
            DataType::Boolean => Value::Boolean(r.is_multiple_of(3)),
            DataType::Int32 => Value::Int32(match i {
                0 => i32::MAX,
                1 => i32::MIN + 1,
                _ => (r % 100_000) as i32 - 50_000,
            }),
            DataType::Int64 => Value::Int64(match i {
                0 => i64::MAX,
                1 => i64::MIN + 1,
                _ => (r % 10_000_000) as i64 * 1000 - 3,
            }),
            DataType::Timestamp => Value::Int64(1_700_000_000_000 + i as i64 * 1000 + (r % 5) as i64),
            DataType::Date => Value::Int32(20200101 + (r % 12) as i32 * 100 + (r % 28) as i32),
            DataType::Float if lossy_float => Value::Float(((r % 20_000) as i32 - 10_000) as f32 / 100.0),
            DataType::Double if lossy_float => Value::Double(((r % 2_000_000) as i64 - 1_000_000) as f64 / 100.0),
            DataType::Float => Value::Float(match i {
                0 => f32::INFINITY,
                1 => -0.0,
                2 => f32::MIN_POSITIVE / 4.0,
                _ => f32::from_bits((r as u32) & 0x7f7f_ffff) * if r.is_multiple_of(2) { 1.0 } else { -1.0 },
            }),
            DataType::Double => Value::Double(match i {
                0 => f64::NEG_INFINITY,
                1 => 5e-324,
                2 => f64::MAX,
                _ => (r % 1_000_000) as f64 * 0.001 - 17.5,
            }),
            DataType::Text | DataType::String => Value::Binary(match r % 4 {
                0 => "RUNNING".into(),
                1 => "a,b \"quoted\"".into(),
                2 => format!("状态-{}", r % 9).into_bytes(),
                _ => b"".to_vec(),
            }),
            DataType::Blob => Value::Binary(r.to_be_bytes()[..(r % 9) as usize].iter().map(|b| b | 1).collect()),
            DataType::Vector => unreachable!(),
        };
        v.push(value).unwrap();
    }
    v
}

#[test]
fn apache_reads_what_arbor_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for compression in COMPRESSIONS {
        for aligned in [false, true] {
            let path = dir.path().join(format!("arbor_{}_{aligned}.tsfile", compression.name()));
            // Small pages and two chunk groups per device: multi-page, multi-group.
            let mut w = TsFileWriter::new(std::fs::File::create(&path).unwrap(), WriterOptions { page_max_points: 70, ..Default::default() }).unwrap();
            for (ti, t) in DataType::ALL.iter().enumerate() {
                let device = DeviceId::from_tree_path(&format!("root.interop.{}", t.name().to_lowercase()));
                let schemas: Vec<SeriesSchema> = apache_encodings(*t)
                    .iter()
                    .map(|e| SeriesSchema::new(e.name().to_lowercase(), *t).with_encoding(*e).with_compression(compression))
                    .collect();
                for group in 0..2u64 {
                    let times: Vec<i64> = (0..150).map(|i| group as i64 * 10_000 + i * 10).collect();
                    let data: Vec<Values> = schemas
                        .iter()
                        .enumerate()
                        .map(|(si, s)| values_for(*t, s.encoding.unwrap(), times.len(), (ti * 97 + si * 13) as u64 + group))
                        .collect();
                    if aligned {
                        // Every third row of every other column is null.
                        let validity: Vec<Vec<bool>> = (0..schemas.len()).map(|si| (0..times.len()).map(|r| si % 2 == 0 || r % 3 != 0).collect()).collect();
                        let present: Vec<Values> = data.iter().zip(&validity).map(|(d, v)| {
                            let mut out = Values::empty(*t);
                            for (i, keep) in v.iter().enumerate() { if *keep { out.push(d.get(i)).unwrap(); } }
                            out
                        }).collect();
                        let columns: Vec<AlignedColumn<'_>> = schemas.iter().zip(&present).zip(&validity)
                            .map(|((schema, values), v)| AlignedColumn { schema, values, validity: Some(v) }).collect();
                        w.write_aligned_chunk_group(&device, &times, &columns).unwrap();
                    } else {
                        let chunks: Vec<SeriesChunk<'_>> = schemas.iter().zip(&data).map(|(schema, values)| SeriesChunk { schema, times: &times, values }).collect();
                        w.write_chunk_group(&device, &chunks).unwrap();
                    }
                }
            }
            w.finish().unwrap();
            let theirs = normalise(&apache(&[Path::new("read"), &path]));
            let ours = normalise(&our_dump(&path));
            assert!(!ours.is_empty());
            assert_eq!(theirs.len(), ours.len(), "{}: row count", path.display());
            for (a, b) in theirs.iter().zip(&ours) {
                assert_eq!(a, b, "{}", path.display());
            }
            checked += ours.len();
        }
    }
    assert!(checked > 50_000, "{checked} points compared");
}

/// A random walk that the automatic choice stores as byte-packed TS_2DIFF
/// under ZSTD: steps are a sum of three small uniform draws (bell-shaped,
/// like the paper workload's), FLOAT/DOUBLE in cents.
fn walk_for(t: DataType, n: usize, seed: u64) -> Values {
    let mut rng = Rng(seed | 1);
    let mut v = Values::with_capacity(t, n);
    let mut level: i64 = 2_000;
    for i in 0..n {
        level += (0..3).map(|_| (rng.next() % 7) as i64 - 3).sum::<i64>();
        let value = match t {
            DataType::Int32 => Value::Int32(level as i32),
            DataType::Int64 => Value::Int64(level * 1_000_003),
            DataType::Timestamp => Value::Int64(1_700_000_000_000 + i as i64 * 1000 + level),
            DataType::Date => Value::Int32(20_200_101 + (level.rem_euclid(28)) as i32),
            DataType::Float => Value::Float(level as f32 / 100.0),
            DataType::Double => Value::Double(level as f64 / 100.0),
            _ => unreachable!(),
        };
        v.push(value).unwrap();
    }
    v
}

/// TS_2DIFF in the byte-packed layout (one block per page, each delta in
/// whole bytes) under every codec, and the automatic choice that picks it
/// with ZSTD: Apache reads back exactly what Arbor reads, and that is what
/// was written.
#[test]
fn apache_reads_byte_packed_ts2diff_and_the_automatic_zstd_choice() {
    use tsfile::encoding::{EncodeOptions, Ts2DiffLayout};
    const TYPES: [DataType; 6] = [DataType::Int32, DataType::Int64, DataType::Timestamp, DataType::Date, DataType::Float, DataType::Double];
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut auto_zstd = 0;
    for compression in [None, Some(Compression::Zstd), Some(Compression::Lz4), Some(Compression::Uncompressed)] {
        for aligned in [false, true] {
            let label = compression.map_or("auto", |c| c.name());
            let path = dir.path().join(format!("packed_{label}_{aligned}.tsfile"));
            // 2 chunk groups of 2 000 rows in pages of 700: multi-page, short last page.
            let mut w = TsFileWriter::new(std::fs::File::create(&path).unwrap(), WriterOptions { page_max_points: 700, ..Default::default() }).unwrap();
            let mut expected: Vec<(DeviceId, String, Values)> = Vec::new();
            for (ti, t) in TYPES.iter().enumerate() {
                let device = DeviceId::from_tree_path(&format!("root.packed.{}", t.name().to_lowercase()));
                let mut packed = SeriesSchema::new("packed", *t).with_encoding(Encoding::Ts2Diff);
                packed.compression = compression;
                packed.encode_options = EncodeOptions { ts2diff_layout: Ts2DiffLayout::BytePacked, ..EncodeOptions::default() };
                let mut walk = SeriesSchema::new("walk", *t);
                walk.compression = compression;
                for group in 0..2u64 {
                    let times: Vec<i64> = (0..2_000).map(|i| group as i64 * 100_000 + i * 10).collect();
                    let seed = ti as u64 * 31 + group;
                    // Aligned, the walk column misses every fifth row.
                    let validity: Vec<bool> = (0..times.len()).map(|r| !aligned || r % 5 != 0).collect();
                    let present = validity.iter().filter(|v| **v).count();
                    let data = [values_for(*t, Encoding::Ts2Diff, times.len(), seed), walk_for(*t, present, seed)];
                    let schemas = [&packed, &walk];
                    if aligned {
                        let validities = [None, Some(validity.as_slice())];
                        let columns: Vec<AlignedColumn<'_>> = schemas.iter().zip(&data).zip(validities).map(|((schema, values), validity)| AlignedColumn { schema, values, validity }).collect();
                        w.write_aligned_chunk_group(&device, &times, &columns).unwrap();
                    } else {
                        let chunks: Vec<SeriesChunk<'_>> = schemas.iter().zip(&data).map(|(schema, values)| SeriesChunk { schema, times: &times, values }).collect();
                        w.write_chunk_group(&device, &chunks).unwrap();
                    }
                    for (schema, values) in schemas.iter().zip(data) {
                        match expected.iter_mut().find(|(d, m, _)| *d == device && *m == schema.measurement) {
                            Some((_, _, all)) => all.extend_from(&values).unwrap(),
                            None => expected.push((device.clone(), schema.measurement.clone(), values)),
                        }
                    }
                }
            }
            w.finish().unwrap();

            // Arbor reads back what was written, bit for bit, and the chunks
            // carry what the test claims.
            let reader = TsFileReader::open(&path).unwrap();
            let metas = reader.all_device_metadata().unwrap();
            for (device, measurement, want) in &expected {
                let meta = metas.iter().find(|m| m.device == *device).unwrap();
                for c in &meta.series(measurement).unwrap().chunks {
                    let chunk = reader.read_chunk(c.offset_of_chunk_header).unwrap();
                    if measurement == "packed" {
                        assert_eq!(chunk.header.encoding, Encoding::Ts2Diff);
                        assert_eq!(chunk.header.compression, compression.unwrap_or(Compression::Lz4));
                    } else if compression.is_none() && chunk.header.compression == Compression::Zstd && chunk.header.encoding == Encoding::Ts2Diff {
                        auto_zstd += 1;
                    }
                }
                let (_, got) = tsfile::csv_io::read_series_points(&reader, meta, measurement).unwrap();
                assert_eq!(got.len(), want.len(), "{device} {measurement}");
                for i in 0..want.len() {
                    let (a, b) = (got.get(i), want.get(i));
                    let same = match (&a, &b) {
                        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
                        _ => a == b,
                    };
                    assert!(same, "{} {device} {measurement} row {i}: {a:?} != {b:?}", path.display());
                }
            }
            let theirs = normalise(&apache(&[Path::new("read"), &path]));
            let ours = normalise(&our_dump(&path));
            assert_eq!(theirs.len(), ours.len(), "{}: row count", path.display());
            for (a, b) in theirs.iter().zip(&ours) {
                assert_eq!(a, b, "{}", path.display());
            }
            checked += ours.len();
        }
    }
    // Every walk chunk of the automatic files (6 types x 2 groups x 2 modes) took ZSTD.
    assert_eq!(auto_zstd, 24, "walk chunks stored as TS_2DIFF + ZSTD by the automatic choice");
    // 8 files x 6 types x 2 series x 4 000 rows, less the aligned walks' nulls.
    assert!(checked >= 8 * 6 * 2 * 4_000 - 4 * 6 * 800, "{checked} points compared");
}

fn spec_value(t: DataType, v: &Value) -> serde_json::Value {
    match (t, v) {
        (DataType::Blob, Value::Binary(b)) => json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
        (DataType::Date, Value::Int32(d)) => json!(tsfile::text::date_text(*d)),
        (_, Value::Boolean(b)) => json!(b),
        (_, Value::Int32(x)) => json!(x),
        (_, Value::Int64(x)) => json!(x),
        (_, Value::Float(x)) if !x.is_finite() => json!(tsfile::text::format_value(t, v)),
        (_, Value::Double(x)) if !x.is_finite() => json!(tsfile::text::format_value(t, v)),
        (_, Value::Float(x)) => json!(f64::from(*x)),
        (_, Value::Double(x)) => json!(x),
        (_, Value::Binary(b)) => json!(String::from_utf8(b.clone()).unwrap()),
    }
}

fn series_spec(t: DataType, e: Encoding, c: Compression, n: usize, seed: u64) -> serde_json::Value {
    let values = values_for(t, e, n, seed);
    let points: Vec<serde_json::Value> = (0..n)
        // Sparse: every 7th point missing, so aligned rows have nulls.
        .filter(|i| !(i + seed as usize).is_multiple_of(7))
        .map(|i| json!([i as i64 * 5, spec_value(t, &values.get(i))]))
        .collect();
    json!({ "measurement": e.name().to_lowercase(), "data_type": t.name(), "encoding": e.name(), "compression": c.name(), "points": points })
}

#[test]
fn arbor_reads_what_apache_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "page_writer_max_point_num_": 100 });
    let mut specs = Vec::new();
    // Non-aligned: every type × encoding in one file per compressor (LZMA2
    // too: Arbor reads it, never writes it).
    for c in COMPRESSIONS.into_iter().chain([Compression::Lzma2]) {
        let devices: Vec<serde_json::Value> = DataType::ALL
            .iter()
            .map(|t| {
                let series: Vec<_> = apache_encodings(*t).iter().enumerate().map(|(i, e)| series_spec(*t, *e, c, 300, i as u64 + 3)).collect();
                json!({ "device": format!("root.apache.{}", t.name().to_lowercase()), "aligned": false, "series": series })
            })
            .collect();
        specs.push((format!("apache_{}", c.name()), json!({ "config": config, "devices": devices })));
    }
    // Aligned (Apache picks one encoding per type group and one compressor per
    // file): round r uses each type's r-th encoding and cycles the compressors.
    for round in 0..6 {
        let c = COMPRESSIONS[round % COMPRESSIONS.len()];
        let groups: [&[DataType]; 6] = [
            &[DataType::Boolean],
            &[DataType::Int32, DataType::Date],
            &[DataType::Int64, DataType::Timestamp],
            &[DataType::Float],
            &[DataType::Double],
            &[DataType::Text, DataType::String, DataType::Blob],
        ];
        let mut series = Vec::new();
        for group in groups {
            // One encoding for the whole group: the lead type's r-th that all members read.
            let common: Vec<Encoding> = apache_encodings(group[0]).iter().copied().filter(|e| group.iter().all(|t| apache_encodings(*t).contains(e))).collect();
            let e = common[round % common.len()];
            for t in group {
                let mut s = series_spec(*t, e, c, 300, round as u64 + 11);
                s["measurement"] = json!(t.name().to_lowercase());
                series.push(s);
            }
        }
        let devices = json!([{ "device": "root.apalign.d1", "aligned": true, "series": series }]);
        specs.push((format!("apache_aligned_{round}"), json!({ "config": config, "devices": devices })));
    }
    let mut multi_chunk_or_page = false;
    for (name, spec) in specs {
        let spec_path = dir.path().join(format!("{name}.json"));
        let file = dir.path().join(format!("{name}.tsfile"));
        std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
        apache(&[Path::new("write"), &spec_path, &file]);
        let ours = normalise(&our_dump(&file));
        let theirs = normalise(&apache(&[Path::new("read"), &file]));
        let expected_points: usize = spec["devices"].as_array().unwrap().iter()
            .flat_map(|d| d["series"].as_array().unwrap().iter())
            .map(|s| s["points"].as_array().unwrap().len())
            .sum();
        assert_eq!(ours.len(), expected_points, "{name}: point count");
        assert_eq!(theirs.len(), ours.len(), "{name}: row count");
        for (a, b) in theirs.iter().zip(&ours) {
            assert_eq!(a[1..], b[1..], "{name}");
        }
        let r = TsFileReader::open(&file).unwrap();
        for d in r.all_device_metadata().unwrap() {
            for s in &d.series {
                let chunk = r.read_chunk(s.chunks[0].offset_of_chunk_header).unwrap();
                multi_chunk_or_page |= chunk.header.multi_page;
            }
        }
    }
    assert!(multi_chunk_or_page, "Apache wrote multi-page chunks");
}

/// Series for the read-only encodings (SPRINTZ, RLBE, CAMEL), with the
/// values Apache's writer stores exactly: SPRINTZ steps stay far below the
/// overflow the README describes; CAMEL gets no NaN (Apache writes it as
/// 0.0; checked separately) and only values its writer keeps exactly (short
/// decimals, or values it Gorilla-codes): it rounds e.g. 89.0 * 1e-9 to 8.9e-7.
fn read_only_encoding_series(n: usize) -> Vec<(&'static str, DataType, Encoding, Values)> {
    let mut rng = Rng(0x5eed_cafe);
    let mut series = Vec::new();
    let mut add = |name, t, e, values: Vec<Value>| {
        let mut v = Values::with_capacity(t, values.len());
        for x in values {
            v.push(x).unwrap();
        }
        series.push((name, t, e, v));
    };
    let mut walk = 0i64;
    add("sprintz_i32", DataType::Int32, Encoding::Sprintz, (0..n).map(|i| {
        walk += (rng.next() % 200_001) as i64 - 100_000;
        Value::Int32(if (i / 50) % 4 == 3 { -7 } else { walk as i32 })
    }).collect());
    add("sprintz_i32_max", DataType::Int32, Encoding::Sprintz, vec![Value::Int32(i32::MAX); 40]);
    add("sprintz_i32_min", DataType::Int32, Encoding::Sprintz, vec![Value::Int32(i32::MIN); 41]);
    add("sprintz_i32_one", DataType::Int32, Encoding::Sprintz, vec![Value::Int32(-1)]);
    add("sprintz_i64", DataType::Int64, Encoding::Sprintz, (0..n).map(|i| {
        Value::Int64(match i % 3 {
            0 => 1_700_000_000_000 + i as i64 * 1000 + (rng.next() % 7) as i64,
            1 => -((rng.next() % (1 << 40)) as i64),
            _ => (rng.next() % (1 << 44)) as i64,
        })
    }).collect());
    add("sprintz_i64_min", DataType::Int64, Encoding::Sprintz, vec![Value::Int64(i64::MIN); 25]);
    add("rlbe_i32", DataType::Int32, Encoding::Rlbe, (0..n).map(|i| Value::Int32(match i % 7 {
        0 => i32::MIN,
        1 => i32::MAX,
        2 | 3 => 5,
        _ => rng.next() as i32,
    })).collect());
    add("rlbe_i64", DataType::Int64, Encoding::Rlbe, (0..n).map(|i| Value::Int64(match i % 7 {
        0 => i64::MIN,
        1 => i64::MAX,
        2 | 3 => -5,
        _ => rng.next() as i64,
    })).collect());
    add("rlbe_ts", DataType::Timestamp, Encoding::Rlbe, (0..n).map(|i| Value::Int64(1_700_000_000_000 + i as i64 * 1000)).collect());
    add("rlbe_date", DataType::Date, Encoding::Rlbe, (0..n).map(|i| Value::Int32(20240101 + (i % 28) as i32)).collect());
    let floats = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, f32::MAX, f32::MIN, 1e-45, -1.5];
    add("rlbe_f32", DataType::Float, Encoding::Rlbe, (0..n).map(|i| Value::Float(match floats.get(i % 20) {
        Some(f) => *f,
        None => f32::from_bits(rng.next() as u32 & 0x7f7f_ffff),
    })).collect());
    let doubles = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, f64::MAX, f64::MIN, 5e-324, -1.5];
    add("rlbe_f64", DataType::Double, Encoding::Rlbe, (0..n).map(|i| Value::Double(match doubles.get(i % 20) {
        Some(d) => *d,
        None => f64::from_bits(rng.next() & 0x7fef_ffff_ffff_ffff),
    })).collect());
    let edges = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 5e-324, 9.3e18, -1.5, 0.1];
    add("camel_f64", DataType::Double, Encoding::Camel, (0..n).map(|i| Value::Double(match (edges.get(i % 40), i % 3) {
        (Some(d), _) => *d,
        (None, 0) => ((rng.next() % 2_000_000_000) as i64 - 1_000_000_000) as f64 / 10f64.powi((rng.next() % 7) as i32),
        (None, 1) => f64::from_bits(rng.next() & 0x7fef_ffff_ffff_ffff) * if rng.next().is_multiple_of(2) { 1.0 } else { -1.0 },
        _ => (rng.next() % 1000) as f64 / 1e9,
    })).collect());
    add("camel_const", DataType::Double, Encoding::Camel, vec![Value::Double(3.25); 3000]);
    add("camel_one", DataType::Double, Encoding::Camel, vec![Value::Double(-42.5)]);
    series
}

/// Apache writes SPRINTZ, RLBE and CAMEL pages; Arbor reads them back
/// bit-exactly (the values given to Apache) and agrees with Apache's reader.
#[test]
fn arbor_reads_apache_sprintz_rlbe_camel() {
    let dir = tempfile::tempdir().unwrap();
    let series = read_only_encoding_series(2_500);
    let spec_series = |c: Compression, keep: &dyn Fn(DataType, Encoding) -> bool| -> Vec<serde_json::Value> {
        series.iter().filter(|(_, t, e, _)| keep(*t, *e)).map(|(name, t, e, v)| {
            let points: Vec<_> = (0..v.len()).map(|i| json!([i as i64, spec_value(*t, &v.get(i))])).collect();
            json!({ "measurement": name, "data_type": t.name(), "encoding": e.name(), "compression": c.name(), "points": points })
        }).collect()
    };
    let mut files = Vec::new();
    for c in [Compression::Uncompressed, Compression::Lz4] {
        let devices = json!([{ "device": "root.ro.d1", "aligned": false, "series": spec_series(c, &|_, _| true) }]);
        files.push((format!("ro_{}", c.name()), json!({ "config": { "page_writer_max_point_num_": 1000 }, "devices": devices })));
    }
    // Aligned (table writer): one encoding per type group.
    let aligned = spec_series(Compression::Lz4, &|t, e| matches!(
        (t, e),
        (DataType::Int32, Encoding::Sprintz) | (DataType::Int64 | DataType::Float, Encoding::Rlbe) | (DataType::Double, Encoding::Camel)
    ));
    files.push(("ro_aligned".into(), json!({ "devices": [{ "device": "root.roal.d1", "aligned": true, "series": aligned }] })));
    // Default page size: RLBE blocks of 10 000 values inside one page.
    let long: Vec<_> = ["rlbe_i64", "rlbe_f64"].iter().map(|name| {
        let points: Vec<_> = (0..25_000i64).map(|i| json!([i, if i < 12_000 { 7 } else { i * i }])).collect();
        let t = if *name == "rlbe_i64" { "INT64" } else { "DOUBLE" };
        json!({ "measurement": name, "data_type": t, "encoding": "RLBE", "compression": "UNCOMPRESSED", "points": points })
    }).collect();
    files.push(("ro_long".into(), json!({ "devices": [{ "device": "root.rolong.d1", "aligned": false, "series": long }] })));

    let mut compared = 0;
    for (name, spec) in files {
        let spec_path = dir.path().join(format!("{name}.json"));
        let file = dir.path().join(format!("{name}.tsfile"));
        std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
        apache(&[Path::new("write"), &spec_path, &file]);
        // Exact expected values: what was given to Apache.
        let reader = TsFileReader::open(&file).unwrap();
        let metas = reader.all_device_metadata().unwrap();
        for d in spec["devices"].as_array().unwrap() {
            let device = DeviceId::from_tree_path(d["device"].as_str().unwrap());
            let meta = metas.iter().find(|m| m.device == device).unwrap();
            for s in d["series"].as_array().unwrap() {
                let measurement = s["measurement"].as_str().unwrap();
                let t: DataType = s["data_type"].as_str().unwrap().parse().unwrap();
                // Apache really used the encoding asked for.
                let ts = meta.series(measurement).unwrap();
                for c in &ts.chunks {
                    let chunk = reader.read_chunk(c.offset_of_chunk_header).unwrap();
                    assert_eq!(chunk.header.encoding.name(), s["encoding"].as_str().unwrap(), "{name} {measurement}");
                }
                let (times, values) = tsfile::csv_io::read_series_points(&reader, meta, measurement).unwrap();
                let points = s["points"].as_array().unwrap();
                assert_eq!(times.len(), points.len(), "{name} {measurement}");
                for (i, p) in points.iter().enumerate() {
                    assert_eq!(times[i], p[0].as_i64().unwrap());
                    let want = spec_to_value(t, &p[1]);
                    let have = values.get(i);
                    assert!(same_value(&want, &have), "{name} {measurement}[{i}]: want {want:?}, got {have:?}");
                }
                compared += points.len();
            }
        }
        // And the same as Apache's own reader.
        let ours = normalise(&our_dump(&file));
        let theirs = normalise(&apache(&[Path::new("read"), &file]));
        assert_eq!(theirs.len(), ours.len(), "{name}: row count");
        for (a, b) in theirs.iter().zip(&ours) {
            assert_eq!(a[1..], b[1..], "{name}");
        }
    }
    assert!(compared > 100_000, "{compared} points compared");
}

/// CAMEL as Apache writes NaN: its reader returns 0.0 and derails the next
/// gorilla-coded value; Arbor returns exactly what Apache's reader does.
#[test]
fn arbor_reads_apache_camel_nan_like_apache() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({ "devices": [{ "device": "root.nan.d1", "aligned": false, "series": [
        { "measurement": "c", "data_type": "DOUBLE", "encoding": "CAMEL", "compression": "UNCOMPRESSED",
          "points": [[1, 1.0], [2, "NaN"], [3, "inf"], [4, 2.5], [5, "NaN"], [6, -0.5]] }] }] });
    let spec_path = dir.path().join("nan.json");
    let file = dir.path().join("nan.tsfile");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    apache(&[Path::new("write"), &spec_path, &file]);
    let ours = normalise(&our_dump(&file));
    let theirs = normalise(&apache(&[Path::new("read"), &file]));
    assert_eq!(ours, theirs);
    let values: Vec<&str> = ours.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(values, ["1.0", "0.0", "1.1125369292536007e-308", "2.5", "0.0", "-0.5"]);
}

fn spec_to_value(t: DataType, v: &serde_json::Value) -> Value {
    match (t.physical(), v) {
        (_, serde_json::Value::String(s)) => tsfile::text::parse_value(t, s).unwrap(),
        (tsfile::PhysicalType::Int32, _) => Value::Int32(v.as_i64().unwrap() as i32),
        (tsfile::PhysicalType::Int64, _) => Value::Int64(v.as_i64().unwrap()),
        (tsfile::PhysicalType::Float, _) => Value::Float(v.as_f64().unwrap() as f32),
        (tsfile::PhysicalType::Double, _) => Value::Double(v.as_f64().unwrap()),
        other => panic!("no read-only encoding for {other:?}"),
    }
}

/// Equal values, floats compared by bits (NaN equals NaN).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}
