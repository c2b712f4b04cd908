//! Fuzz the TsFile reader: any bytes must yield Ok or an error, never a
//! panic, hang or unbounded allocation. Run from `tsfile/`:
//! `cargo +nightly fuzz run reader -- -max_len=65536 -rss_limit_mb=2048`
//! (seed the corpus with `tests/fixtures/*.tsfile`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tsfile::{TimeRange, TsFileReader};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = TsFileReader::new(data.to_vec(), "fuzz") else {
        return;
    };
    let _ = reader.chunk_groups();
    if let Ok(devices) = reader.all_device_metadata() {
        for d in &devices {
            for s in d.value_series() {
                let _ = reader.read_series_of(d, &s.measurement, TimeRange::ALL);
            }
        }
    }
});
