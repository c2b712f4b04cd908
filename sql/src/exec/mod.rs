//! Physical operators (`*Exec`): how plans over stored data execute.

mod align_by_device;
mod align_by_time;
mod device_scan;
mod fill;
mod gap_fill;
mod last_values;
mod planner;
mod segments;
mod series_aggregate;
mod windows;

pub use align_by_time::{AlignByTime, AlignByTimeExec};
pub use device_scan::{DeviceScanExec, DeviceScanSpec, ScanColumn};
pub use planner::ArborQueryPlanner;
pub use series_aggregate::{SeriesAggItem, SeriesAggregate, SeriesAggregateExec, StatKind};
pub use windows::{TimeWindows, TimeWindowsExec, WindowFill, WindowFillExec, MAX_WINDOWS, WINDOW};
pub use fill::{Fill, FillExec, FillMethod};
pub use last_values::{last_schema, value_text, LastItem, LastValues, LastValuesExec};
pub use align_by_device::{AlignByDevice, AlignByDeviceExec};
pub use segments::{SegmentKind, Segments, SegmentsExec, CONTROL};
pub use gap_fill::{GapFill, GapFillExec, GapFillKind, GapFillSpec, Stride};
