//! Series resolution shared by both surfaces: path patterns to the series
//! (and the database holding each) in the catalog.

use std::collections::BTreeMap;

use catalog::{Page, PathPattern, SeriesInfo};
use storage::SeriesKey;
use tsfile::DataType;

use crate::instance::Instance;

/// One series a query reads.
#[derive(Debug, Clone)]
pub struct SeriesRef {
    pub info: SeriesInfo,
    /// The database path, whose engine holds the data.
    pub database: String,
}

impl SeriesRef {
    pub fn key(&self) -> SeriesKey {
        SeriesKey::new(self.info.device_path().to_string(), self.info.path.last().to_string())
    }

    pub fn path(&self) -> String {
        self.info.path.to_string()
    }

    pub fn data_type(&self) -> DataType {
        self.info.handle.data_type
    }
}

/// The series matching any of `patterns`, in path order, without duplicates.
pub(crate) fn resolve(instance: &Instance, patterns: &[PathPattern]) -> Vec<SeriesRef> {
    let mut found: BTreeMap<String, SeriesRef> = BTreeMap::new();
    for p in patterns {
        for info in instance.catalog().list_series(p, Page::all()) {
            let database = info.database.to_string();
            found.entry(info.path.to_string()).or_insert(SeriesRef { info, database });
        }
    }
    found.into_values().collect()
}

