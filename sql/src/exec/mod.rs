//! Physical operators (`*Exec`): how plans over stored data execute.

mod device_scan;

pub use device_scan::{DeviceScanExec, DeviceScanSpec, ScanColumn};
