//! Encode/decode throughput (points/s) and size (bytes/point) per encoding on
//! four series shapes, and whole-file bytes/point (time + values, after
//! compression) for the random-walk series.
//!
//! `cargo bench -p tsfile --bench encodings` prints the size table first,
//! then criterion's timings (throughput in elements/s = points/s).

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use tsfile::encoding::{decode, encode, EncodeOptions};
use tsfile::writer::{SeriesChunk, SeriesSchema, TsFileWriter, WriterOptions};
use tsfile::{Compression, DataType, DeviceId, Encoding, Values};

const N: usize = 100_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random walk with 2 decimals: steps of -0.10..=+0.10 in hundredths.
fn random_walk(n: usize) -> Vec<f64> {
    let mut rng = Rng(42);
    let mut cents: i64 = 2_000;
    (0..n)
        .map(|_| {
            cents += (rng.next() % 21) as i64 - 10;
            cents as f64 / 100.0
        })
        .collect()
}

fn datasets() -> Vec<(&'static str, DataType, Values)> {
    let mut rng = Rng(7);
    let mut counter = 1_000_000i64;
    let counter: Vec<i64> = (0..N).map(|_| { counter += (rng.next() % 5) as i64; counter }).collect();
    let mut state = false;
    let states: Vec<bool> = (0..N).map(|_| { if rng.next().is_multiple_of(50) { state = !state; } state }).collect();
    let names = ["RUNNING", "IDLE", "FAULT", "MAINTENANCE"];
    let mut cur = 0usize;
    let status: Vec<Vec<u8>> = (0..N).map(|_| { if rng.next().is_multiple_of(40) { cur = (rng.next() % 4) as usize; } names[cur].as_bytes().to_vec() }).collect();
    vec![
        ("random_walk_double", DataType::Double, Values::Double(random_walk(N))),
        ("counter_int64", DataType::Int64, Values::Int64(counter)),
        ("state_boolean", DataType::Boolean, Values::Boolean(states)),
        ("status_text", DataType::Text, Values::Binary(status)),
    ]
}

fn options_for(data_type: DataType, encoding: Encoding) -> EncodeOptions {
    match (data_type, encoding) {
        (DataType::Double, Encoding::Ts2Diff | Encoding::Rle) => EncodeOptions { max_point_number: 2, ..EncodeOptions::default() },
        _ => EncodeOptions::default(),
    }
}

/// Encode in pages of 10,000 values as the writer does.
fn encode_pages(encoding: Encoding, data_type: DataType, values: &Values) -> Vec<Vec<u8>> {
    let options = options_for(data_type, encoding);
    (0..values.len())
        .step_by(10_000)
        .map(|start| {
            let mut out = Vec::new();
            encode(encoding, data_type, &values.slice(start..(start + 10_000).min(values.len())), &options, &mut out).expect("encodes");
            out
        })
        .collect()
}

fn whole_file_bytes(values: &[f64], compression: Compression, encoding: Option<Encoding>) -> usize {
    let schema = SeriesSchema { encoding, ..SeriesSchema::new("temperature", DataType::Double).with_compression(compression) };
    let times: Vec<i64> = (0..values.len() as i64).map(|i| 1_700_000_000_000 + i * 1000).collect();
    let vals = Values::Double(values.to_vec());
    let mut w = TsFileWriter::new(Vec::new(), WriterOptions::default()).expect("writer");
    w.write_chunk_group(&DeviceId::from_tree_path("root.bench.d1"), &[SeriesChunk { schema: &schema, times: &times, values: &vals }]).expect("write");
    w.finish().expect("finish").len()
}

fn print_sizes() {
    println!("bytes/point per encoding ({N} points, pages of 10,000):");
    for (name, data_type, values) in datasets() {
        for &encoding in data_type.writable_encodings() {
            let bytes: usize = encode_pages(encoding, data_type, &values).iter().map(Vec::len).sum();
            println!("  {name:<20} {:<10} {:>8.3}", encoding.name(), bytes as f64 / N as f64);
        }
    }
    let walk = random_walk(86_400);
    println!("whole file, random walk, one day at 1 s (time + value columns, all metadata), bytes/point:");
    for (label, comp, enc) in [
        ("GORILLA + LZ4 (Apache default)", Compression::Lz4, Some(Encoding::Gorilla)),
        ("auto + LZ4", Compression::Lz4, None),
        ("auto + ZSTD", Compression::Zstd, None),
        ("auto + UNCOMPRESSED", Compression::Uncompressed, None),
    ] {
        println!("  {label:<32} {:>8.3}", whole_file_bytes(&walk, comp, enc) as f64 / walk.len() as f64);
    }
}

fn bench(c: &mut Criterion) {
    for (name, data_type, values) in datasets() {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(N as u64));
        group.sample_size(20);
        for &encoding in data_type.writable_encodings() {
            let options = options_for(data_type, encoding);
            group.bench_function(BenchmarkId::new("encode", encoding.name()), |b| {
                let mut out = Vec::with_capacity(N * 9);
                b.iter(|| {
                    out.clear();
                    encode(encoding, data_type, &values, &options, &mut out).expect("encodes");
                    out.len()
                })
            });
            let mut encoded = Vec::new();
            encode(encoding, data_type, &values, &options, &mut encoded).expect("encodes");
            group.bench_function(BenchmarkId::new("decode", encoding.name()), |b| {
                b.iter(|| decode(encoding, data_type, &encoded, N).expect("decodes").len())
            });
        }
        group.finish();
    }
    let walk = random_walk(86_400);
    let mut group = c.benchmark_group("whole_file");
    group.throughput(Throughput::Elements(walk.len() as u64));
    group.sample_size(10);
    group.bench_function("write_auto_lz4", |b| b.iter(|| whole_file_bytes(&walk, Compression::Lz4, None)));
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    print_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
