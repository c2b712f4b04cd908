//! The data of the two workloads, generated deterministically: a seeded
//! splitmix64 generator, Box-Muller normals, and series that are a base
//! level + a daily sinusoid + a random walk + noise, rounded to 2 decimals.

use std::collections::BTreeMap;

/// Sensors per device (s0..s9) in both workloads.
pub(crate) const SENSORS: usize = 10;

/// Standard deviation of one random-walk step and of the noise.
const WALK_SIGMA: f64 = 0.02;
const NOISE_SIGMA: f64 = 0.02;
const DAY_MS: i64 = 86_400_000;

/// splitmix64 (Steele, Lea, Flood 2014): small, fast, good enough for data.
pub(crate) struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng { state: seed, spare: None }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller; the second value of each pair is kept).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// A seed for one stream, mixed from the workload, device and sensor.
fn seed(workload: u64, device: usize, stream: usize) -> u64 {
    let mut r = Rng::new(0x4172_626F_7200_0000 ^ (workload << 40) ^ ((device as u64) << 16) ^ stream as u64);
    r.next_u64()
}

/// One series: its parameters and the state of its random walk.
struct Series {
    rng: Rng,
    base: f64,
    amplitude: f64,
    phase: f64,
    walk: f64,
}

impl Series {
    fn new(workload: u64, device: usize, sensor: usize) -> Self {
        let mut rng = Rng::new(seed(workload, device, sensor));
        let base = 10.0 + 90.0 * rng.uniform();
        let amplitude = 1.0 + 4.0 * rng.uniform();
        let phase = std::f64::consts::TAU * rng.uniform();
        Series { rng, base, amplitude, phase, walk: 0.0 }
    }

    /// The value at `time_ms` (times must come in order, one step each).
    fn next(&mut self, time_ms: i64) -> f64 {
        self.walk += WALK_SIGMA * self.rng.normal();
        let day_fraction = time_ms.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
        let x = self.base
            + self.amplitude * (std::f64::consts::TAU * day_fraction + self.phase).sin()
            + self.walk
            + NOISE_SIGMA * self.rng.normal();
        (x * 100.0).round() / 100.0
    }
}

/// The rows of one device: `seconds` rows from `start_ms`, one per second.
pub(crate) fn device_rows(workload: u64, device: usize, start_ms: i64, seconds: usize) -> Vec<(i64, [f64; SENSORS])> {
    let mut series: Vec<Series> = (0..SENSORS).map(|s| Series::new(workload, device, s)).collect();
    (0..seconds)
        .map(|i| {
            let t = start_ms + 1000 * i as i64;
            let mut values = [0.0; SENSORS];
            for (v, s) in values.iter_mut().zip(series.iter_mut()) {
                *v = s.next(t);
            }
            (t, values)
        })
        .collect()
}

/// One record of the late-data workload, as delivered.
pub(crate) struct Record {
    pub(crate) device: usize,
    pub(crate) time_ms: i64,
    pub(crate) values: [f64; SENSORS],
}

/// The late-data workload: every device's rows, in delivery order. A
/// fraction `late_share` of the records is delayed by a log-uniform delay
/// between 1 s and 2 h; a record is delivered at its time + its delay, and
/// the records are sorted by delivery time (ties keep time, then device,
/// order).
pub(crate) fn late_records(workload: u64, devices: usize, start_ms: i64, seconds: usize, late_share: f64) -> Vec<Record> {
    const MIN_DELAY_MS: f64 = 1_000.0;
    const MAX_DELAY_MS: f64 = 7_200_000.0;
    let per_device: Vec<Vec<(i64, [f64; SENSORS])>> = (0..devices).map(|d| device_rows(workload, d, start_ms, seconds)).collect();
    let mut delays: Vec<Rng> = (0..devices).map(|d| Rng::new(seed(workload, d, 1000))).collect();
    let mut keyed = Vec::with_capacity(devices * seconds);
    for i in 0..seconds {
        for (d, rows) in per_device.iter().enumerate() {
            let (time_ms, values) = rows[i];
            let rng = &mut delays[d];
            let delay = if rng.uniform() < late_share {
                let u = rng.uniform();
                (MIN_DELAY_MS.ln() + u * (MAX_DELAY_MS.ln() - MIN_DELAY_MS.ln())).exp().round() as i64
            } else {
                0
            };
            keyed.push((time_ms + delay, Record { device: d, time_ms, values }));
        }
    }
    keyed.sort_by_key(|(delivery, _)| *delivery); // stable
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// What a reader must see for `device` after every record is applied in
/// delivery order (the last write wins on equal times).
pub(crate) fn expected_device(records: &[Record], device: usize) -> BTreeMap<i64, [f64; SENSORS]> {
    let mut model = BTreeMap::new();
    for r in records.iter().filter(|r| r.device == device) {
        model.insert(r.time_ms, r.values);
    }
    model
}

/// How many records were delivered after a record with a later time.
pub(crate) fn out_of_order(records: &[Record]) -> usize {
    let mut newest = vec![i64::MIN; records.iter().map(|r| r.device + 1).max().unwrap_or(0)];
    let mut late = 0;
    for r in records {
        if r.time_ms < newest[r.device] {
            late += 1;
        } else {
            newest[r.device] = r.time_ms;
        }
    }
    late
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_rounded() {
        let a = device_rows(1, 3, 0, 100);
        let b = device_rows(1, 3, 0, 100);
        assert_eq!(a, b);
        for (_, values) in &a {
            for v in values {
                assert_eq!(format!("{v:.2}").parse::<f64>().ok(), Some(*v));
            }
        }
        assert_ne!(device_rows(1, 4, 0, 1)[0].1, a[0].1);
    }

    #[test]
    fn late_records_are_a_permutation_sorted_by_delivery() {
        let records = late_records(2, 5, 0, 600, 0.05);
        assert_eq!(records.len(), 3000);
        let late = out_of_order(&records);
        assert!(late > 0 && late < 300, "{late}");
        assert_eq!(expected_device(&records, 2).len(), 600);
    }
}
