//! [`Catalog`]: the series tree shared by every connection, its
//! configuration, and every operation the storage and SQL layers call.
//!
//! Concurrency: the tree sits behind an `RwLock`; schema changes are
//! serialized by a `Mutex` around the schema log and id counters. A change
//! is planned under the read lock, validated, appended to the log and
//! fsynced *without* holding the tree lock, and only then applied under a
//! short write lock — so readers (and writes to existing series, which need
//! only the read lock and two hash lookups) never wait for the disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tsfile::{Compression, DataType};

use crate::error::{Error, Result};
use crate::log::{self, encode_snapshot, IdCounters, RecoveryReport, SchemaLog};
use crate::path::Path;
use crate::pattern::{PathPattern, PatternNode};
use crate::record::{NewSeries, Record};
use crate::schema::{
    DatabaseId, DatabaseInfo, DeletedSeries, DeviceId, DeviceInfo, DroppedDatabase, NodeInfo,
    NodeType, Page, SeriesHandle, SeriesId, SeriesInfo, SeriesSpec, ValueKind,
};
use crate::tree::{Flow, NodeIdx, Tree, WalkOptions};

/// Most series ids in one `DeleteSeries` log record.
const DELETE_IDS_PER_RECORD: usize = 1 << 20;

/// Catalog settings (IoTDB's names in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// Create missing databases and series on first write
    /// [`enable_auto_create_schema`]. Off: writing to an unknown series is
    /// [`Error::SeriesNotFound`].
    pub auto_create_schema: bool,
    /// Level of the auto-created database, root being level 0: 1 makes
    /// `root.ln` for `root.ln.wf01.wt01` [`default_storage_group_level`].
    pub database_level: usize,
    /// Types inferred for literals on auto-create [`*_string_infer_type`];
    /// as in IoTDB, a number literal (integer or not) makes a DOUBLE series,
    /// so an integer and then a decimal go into the same series.
    pub boolean_type: DataType,
    pub integer_type: DataType,
    pub floating_type: DataType,
    pub text_type: DataType,
    /// Compression of new series when none is given.
    pub default_compression: Compression,
    /// Write a snapshot and start a fresh log after this many log records.
    pub snapshot_every_records: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            auto_create_schema: true,
            database_level: 1,
            boolean_type: DataType::Boolean,
            integer_type: DataType::Double,
            floating_type: DataType::Double,
            text_type: DataType::Text,
            default_compression: Compression::Lz4,
            snapshot_every_records: 10_000,
        }
    }
}

impl CatalogConfig {
    /// The type a new series gets from the first literal written to it.
    pub fn infer_type(&self, kind: ValueKind) -> DataType {
        match kind {
            ValueKind::Boolean => self.boolean_type,
            ValueKind::Integer => self.integer_type,
            ValueKind::Floating => self.floating_type,
            ValueKind::Text => self.text_type,
        }
    }
}

/// A series looked up by measurement name or alias: its handle and its
/// own measurement name.
pub type FoundSeries = (SeriesHandle, Arc<str>);

/// Sizes and persistence state, for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogStats {
    pub databases: usize,
    pub devices: usize,
    pub series: usize,
    /// Records in the current schema log (0 when in memory).
    pub log_records: u64,
    /// Generation of the current log (0 when in memory).
    pub log_generation: u64,
    /// The last automatic snapshot's failure, if it failed; it is retried
    /// on the next schema change.
    pub last_snapshot_error: Option<String>,
}

/// Serialized schema-change state.
struct Writer {
    log: Option<SchemaLog>,
    ids: IdCounters,
    snapshot_error: Option<String>,
}

/// Whether creating a series that exists is an error or returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Fail,
    Return,
}

/// The series tree: databases, devices and measurements, persisted in a
/// directory (or only in memory). `Send + Sync`; share it in an `Arc`.
pub struct Catalog {
    config: CatalogConfig,
    tree: RwLock<Tree>,
    writer: Mutex<Writer>,
    report: RecoveryReport,
    /// How many schema changes were applied since open: what a plan built
    /// from this catalog was built against ([`Catalog::version`]).
    changes: AtomicU64,
}

impl Catalog {
    /// Open the catalog stored in `dir` (created if missing), recovering
    /// from its snapshot and log.
    pub fn open(dir: impl AsRef<std::path::Path>, config: CatalogConfig) -> Result<Catalog> {
        check_config(&config)?;
        let recovered = log::open(dir.as_ref())?;
        Ok(Catalog {
            config,
            tree: RwLock::new(recovered.tree),
            writer: Mutex::new(Writer {
                log: Some(recovered.log),
                ids: recovered.ids,
                snapshot_error: None,
            }),
            report: recovered.report,
            changes: AtomicU64::new(0),
        })
    }

    /// A catalog that keeps nothing on disk (tests, tools).
    pub fn in_memory(config: CatalogConfig) -> Result<Catalog> {
        check_config(&config)?;
        Ok(Catalog {
            config,
            tree: RwLock::new(Tree::new()),
            writer: Mutex::new(Writer {
                log: None,
                ids: IdCounters::default(),
                snapshot_error: None,
            }),
            report: RecoveryReport::default(),
            changes: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// What [`Catalog::open`] recovered.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.report
    }

    /// The type a new series gets from a literal of this kind.
    pub fn infer_type(&self, kind: ValueKind) -> DataType {
        self.config.infer_type(kind)
    }

    pub fn stats(&self) -> CatalogStats {
        let w = self.lock_writer();
        let tree = self.read_tree();
        CatalogStats {
            databases: tree.database_count(),
            devices: tree.device_count(),
            series: tree.series_count(),
            log_records: w.log.as_ref().map_or(0, SchemaLog::records),
            log_generation: w.log.as_ref().map_or(0, SchemaLog::generation),
            last_snapshot_error: w.snapshot_error.clone(),
        }
    }

    /// Changes with every schema change (databases, series, tags, TTL …):
    /// anything derived from the catalog at an older version may be stale.
    pub fn version(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn read_tree(&self) -> RwLockReadGuard<'_, Tree> {
        // A panic while holding the lock cannot leave the tree half-changed:
        // `apply` only runs on validated records. Keep serving.
        self.tree.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_tree(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Log, apply, and snapshot if due. Caller holds the writer lock and has
    /// validated `records` against the current tree.
    fn commit(&self, w: &mut Writer, records: &[Record]) -> Result<()> {
        if let Some(log) = &mut w.log {
            log.append(records)?;
        }
        {
            let mut tree = self.write_tree();
            for r in records {
                tree.apply(r);
            }
            // Under the tree's write lock: a reader that sees the new
            // version sees the new tree.
            self.changes.fetch_add(1, Ordering::Release);
        }
        for r in records {
            w.ids.observe(r);
        }
        let due = w
            .log
            .as_ref()
            .is_some_and(|l| l.records() >= self.config.snapshot_every_records);
        if due {
            // The change itself is durable already; a failed snapshot is
            // reported in stats() and retried on the next change.
            w.snapshot_error = self.snapshot_locked(w).err().map(|e| e.to_string());
        }
        Ok(())
    }

    fn snapshot_locked(&self, w: &mut Writer) -> Result<()> {
        let ids = w.ids;
        let Some(log) = &mut w.log else {
            return Ok(());
        };
        // Writers are held off by the writer lock; readers go on meanwhile.
        let bytes = encode_snapshot(&self.read_tree(), ids, log.generation() + 1);
        log.install_snapshot(&bytes)
    }

    /// Write a snapshot now and start a fresh log (no-op in memory).
    pub fn snapshot(&self) -> Result<()> {
        let mut w = self.lock_writer();
        let result = self.snapshot_locked(&mut w);
        w.snapshot_error = result.as_ref().err().map(ToString::to_string);
        result
    }

    // ---- databases ----------------------------------------------------

    /// CREATE DATABASE. The path needs two or more levels and may not lie
    /// above or below another database.
    pub fn create_database(&self, path: &Path) -> Result<DatabaseId> {
        let mut w = self.lock_writer();
        let id = w.ids.next_database;
        let records = [Record::CreateDatabase {
            id,
            path: path.nodes().to_vec(),
        }];
        self.read_tree().validate(&records)?;
        self.commit(&mut w, &records)?;
        Ok(DatabaseId(id))
    }

    /// SET TTL TO database ms / UNSET TTL TO database (`None`): points
    /// older than now − TTL are neither written nor read. Returns the
    /// databases the pattern names (`root.ln`, `root.ln.**`, `root.*`).
    pub fn set_ttl(&self, pattern: &PathPattern, ttl_ms: Option<i64>) -> Result<Vec<DatabaseInfo>> {
        let mut w = self.lock_writer();
        let databases = {
            let tree = self.read_tree();
            database_nodes(&tree, pattern)
                .into_iter()
                .filter_map(|idx| tree.database_info(idx))
                .collect::<Vec<_>>()
        };
        if databases.is_empty() {
            return Err(Error::DatabaseNotFound {
                path: pattern.to_string(),
            });
        }
        let records: Vec<_> = databases
            .iter()
            .map(|d| Record::SetTtl { id: d.id.0, ttl_ms })
            .collect();
        self.read_tree().validate(&records)?;
        self.commit(&mut w, &records)?;
        Ok(databases
            .into_iter()
            .map(|d| DatabaseInfo { ttl_ms, ..d })
            .collect())
    }

    /// DELETE DATABASE of one database; returns what it held.
    pub fn drop_database(&self, path: &Path) -> Result<DroppedDatabase> {
        let mut w = self.lock_writer();
        let dropped = {
            let tree = self.read_tree();
            let idx = tree
                .find_database(path)
                .ok_or_else(|| Error::DatabaseNotFound {
                    path: path.to_string(),
                })?;
            dropped_database(&tree, idx)?
        };
        let records = [Record::DropDatabase { id: dropped.id.0 }];
        self.read_tree().validate(&records)?;
        self.commit(&mut w, &records)?;
        Ok(dropped)
    }

    /// DELETE DATABASE with a pattern (`root.ln.**`, `root.*`): drops every
    /// database whose path matches.
    pub fn drop_databases(&self, pattern: &PathPattern) -> Result<Vec<DroppedDatabase>> {
        let mut w = self.lock_writer();
        let dropped = {
            let tree = self.read_tree();
            let mut dropped = Vec::new();
            for idx in database_nodes(&tree, pattern) {
                dropped.push(dropped_database(&tree, idx)?);
            }
            dropped
        };
        if dropped.is_empty() {
            return Err(Error::DatabaseNotFound {
                path: pattern.to_string(),
            });
        }
        let records: Vec<_> = dropped
            .iter()
            .map(|d| Record::DropDatabase { id: d.id.0 })
            .collect();
        self.read_tree().validate(&records)?;
        self.commit(&mut w, &records)?;
        Ok(dropped)
    }

    /// SHOW DATABASES: databases whose path matches, in path order.
    pub fn list_databases(&self, pattern: &PathPattern) -> Vec<DatabaseInfo> {
        let tree = self.read_tree();
        database_nodes(&tree, pattern)
            .into_iter()
            .filter_map(|idx| tree.database_info(idx))
            .collect()
    }

    /// COUNT DATABASES.
    pub fn count_databases(&self, pattern: &PathPattern) -> u64 {
        database_nodes(&self.read_tree(), pattern).len() as u64
    }

    /// The database at exactly `path`.
    pub fn database(&self, path: &Path) -> Option<DatabaseInfo> {
        let tree = self.read_tree();
        tree.find_database(path).and_then(|i| tree.database_info(i))
    }

    /// The database that `path` lies in (at or above it).
    pub fn database_of(&self, path: &Path) -> Option<DatabaseInfo> {
        let tree = self.read_tree();
        let db = tree.database_path_over(path.nodes())?;
        tree.find_database(&db).and_then(|i| tree.database_info(i))
    }

    // ---- creating series ----------------------------------------------

    /// CREATE TIMESERIES of one non-aligned series. A missing database is
    /// created at the configured level when auto-creation is on.
    pub fn create_series(&self, path: &Path, spec: SeriesSpec) -> Result<SeriesHandle> {
        let device = path
            .parent()
            .ok_or_else(|| Error::invalid_path(path.to_string(), "a time series needs a device"))?;
        let handles = self.create_in_device(
            &device,
            false,
            vec![(path.last().to_string(), spec)],
            Existing::Fail,
        )?;
        handles
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no handle for a created series".into()))
    }

    /// CREATE ALIGNED TIMESERIES `device(name spec, ...)`.
    pub fn create_aligned_series(
        &self,
        device: &Path,
        series: Vec<(String, SeriesSpec)>,
    ) -> Result<Vec<SeriesHandle>> {
        self.create_in_device(device, true, series, Existing::Fail)
    }

    /// Create several series of one device at once (one log record, one
    /// fsync); `aligned` must match the device if it exists.
    pub fn create_series_batch(
        &self,
        device: &Path,
        aligned: bool,
        series: Vec<(String, SeriesSpec)>,
    ) -> Result<Vec<SeriesHandle>> {
        self.create_in_device(device, aligned, series, Existing::Fail)
    }

    /// The write path's entry: handles for `measurements` of `device`, in
    /// the order given, creating missing ones (and the database) when
    /// auto-creation is on. The type given is only used to create a
    /// series; an existing series keeps its type: check values against it
    /// with [`Catalog::check_type`] (or coerce literals to it first).
    ///
    /// `device` in canonical form (as [`Path`] prints it) takes the fast
    /// path: a read lock and hash lookups, no parsing, no allocation
    /// besides the result.
    pub fn ensure_series<S: AsRef<str>>(
        &self,
        device: &str,
        measurements: &[(S, DataType)],
        aligned: bool,
    ) -> Result<Vec<SeriesHandle>> {
        if let Some(found) = self.lookup_all(device, measurements, aligned)? {
            return Ok(found);
        }
        let path = Path::parse(device)?;
        let canonical = path.to_string();
        if canonical != device {
            if let Some(found) = self.lookup_all(&canonical, measurements, aligned)? {
                return Ok(found);
            }
        }
        let specs = measurements
            .iter()
            .map(|(m, t)| (m.as_ref().to_string(), SeriesSpec::new(*t)))
            .collect();
        self.create_in_device(&path, aligned, specs, Existing::Return)
    }

    /// All handles if every measurement exists; `None` if any is missing.
    fn lookup_all<S: AsRef<str>>(
        &self,
        device: &str,
        measurements: &[(S, DataType)],
        aligned: bool,
    ) -> Result<Option<Vec<SeriesHandle>>> {
        let tree = self.read_tree();
        let Some(dev) = tree.device_node(device) else {
            return Ok(None);
        };
        if let Some((_, dev_aligned)) = tree.device_state(dev) {
            if dev_aligned != aligned {
                return Err(Error::AlignmentMismatch {
                    device: device.to_string(),
                    aligned: dev_aligned,
                });
            }
        }
        let mut out = Vec::with_capacity(measurements.len());
        for (m, _) in measurements {
            match tree.series_under(dev, m.as_ref()) {
                Some(idx) => out.push(tree.handle(idx)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The series `measurement` (name or alias) of `device` (canonical path
    /// text), under a read lock with two hash lookups.
    pub fn lookup_series(&self, device: &str, measurement: &str) -> Option<SeriesHandle> {
        self.read_tree().lookup(device, measurement)
    }

    /// The series of one device (canonical path text) by measurement name
    /// or alias, under one read lock: for each name its handle and the
    /// series' own measurement name (`None`: no such series). `None` when
    /// `device` is not a device's canonical path.
    pub fn lookup_device_series<M: AsRef<str>>(&self, device: &str, measurements: &[M]) -> Option<Vec<Option<FoundSeries>>> {
        let tree = self.read_tree();
        let dev = tree.device_node(device)?;
        Some(
            measurements
                .iter()
                .map(|m| tree.series_under(dev, m.as_ref()).map(|idx| (tree.handle(idx), Arc::clone(tree.node_name(idx)))))
                .collect(),
        )
    }

    /// Is a value of type `given` acceptable for the series? Errors with
    /// [`Error::TypeMismatch`] naming the path, declared and given types.
    pub fn check_type(&self, handle: &SeriesHandle, given: DataType) -> Result<()> {
        if handle.data_type == given {
            return Ok(());
        }
        let path = {
            let tree = self.read_tree();
            tree.series_node(handle.id)
                .map(|i| tree.path(i).to_string())
                .unwrap_or_else(|| format!("<series id {}>", handle.id))
        };
        Err(Error::TypeMismatch {
            path,
            expected: handle.data_type,
            got: given,
        })
    }

    fn create_in_device(
        &self,
        device: &Path,
        aligned: bool,
        wanted: Vec<(String, SeriesSpec)>,
        existing: Existing,
    ) -> Result<Vec<SeriesHandle>> {
        let mut w = self.lock_writer();
        let mut records = Vec::with_capacity(2);
        {
            let tree = self.read_tree();
            let dev_node = tree.find_device(device);
            let dev_state = dev_node.and_then(|d| tree.device_state(d));
            // Which of the wanted series are new (first occurrence only).
            let device_text = device.to_string();
            let mut new: Vec<&(String, SeriesSpec)> = Vec::new();
            for item in &wanted {
                let found = dev_node.and_then(|_| tree.lookup(&device_text, &item.0));
                match (found, existing) {
                    (Some(_), Existing::Fail) => {
                        return Err(Error::SeriesAlreadyExists {
                            path: device.child(&item.0)?.to_string(),
                        })
                    }
                    (Some(_), Existing::Return) => {}
                    (None, Existing::Return) if new.iter().any(|n| n.0 == item.0) => {}
                    (None, _) => new.push(item),
                }
            }
            if new.is_empty() {
                drop(tree);
                return self.handles_for(device, &wanted);
            }
            if existing == Existing::Return && !self.config.auto_create_schema {
                return Err(Error::SeriesNotFound {
                    path: device.child(&new[0].0)?.to_string(),
                });
            }
            if let Some((_, dev_aligned)) = dev_state {
                if dev_aligned != aligned {
                    return Err(Error::AlignmentMismatch {
                        device: device.to_string(),
                        aligned: dev_aligned,
                    });
                }
            }
            if tree.database_path_over(device.nodes()).is_none() {
                if !self.config.auto_create_schema {
                    return Err(Error::DatabaseNotSet {
                        path: device.to_string(),
                    });
                }
                let level = self.config.database_level;
                if device.len() <= level {
                    return Err(Error::invalid_path(
                        device.to_string(),
                        format!(
                            "no database covers this device and one cannot be created at level {level} above it"
                        ),
                    ));
                }
                records.push(Record::CreateDatabase {
                    id: w.ids.next_database,
                    path: device.nodes()[..=level].to_vec(),
                });
            }
            let device_id = dev_state.map_or(w.ids.next_device, |(id, _)| id.0);
            let mut series = Vec::with_capacity(new.len());
            for (id, (name, spec)) in (w.ids.next_series..).zip(new) {
                series.push(NewSeries {
                    id,
                    name: name.clone(),
                    data_type: spec.data_type,
                    encoding: spec
                        .encoding
                        .unwrap_or_else(|| spec.data_type.default_encoding()),
                    compression: spec.compression.unwrap_or(self.config.default_compression),
                    alias: spec.alias.clone(),
                    tags: spec.tags.clone(),
                    attributes: spec.attributes.clone(),
                    max_point_number: spec.max_point_number,
                });
            }
            records.push(Record::CreateSeries {
                device_id,
                device: device.nodes().to_vec(),
                aligned,
                series,
            });
            tree.validate(&records)?;
        }
        self.commit(&mut w, &records)?;
        drop(w);
        self.handles_for(device, &wanted)
    }

    fn handles_for(
        &self,
        device: &Path,
        wanted: &[(String, SeriesSpec)],
    ) -> Result<Vec<SeriesHandle>> {
        let text = device.to_string();
        let tree = self.read_tree();
        wanted
            .iter()
            .map(|(m, _)| {
                tree.lookup(&text, m).ok_or_else(|| Error::SeriesNotFound {
                    path: device
                        .child(m)
                        .map_or_else(|_| format!("{text}.{m}"), |p| p.to_string()),
                })
            })
            .collect()
    }

    // ---- single lookups ------------------------------------------------

    /// The series at `path` (the last node may be an alias).
    pub fn series(&self, path: &Path) -> Result<SeriesInfo> {
        let tree = self.read_tree();
        tree.find_series(path)
            .map(|i| tree.series_info(i))
            .ok_or_else(|| Error::SeriesNotFound {
                path: path.to_string(),
            })
    }

    /// The measurement name of a series (not an alias), without building
    /// its whole [`SeriesInfo`]: what an insert through an alias writes to.
    pub fn measurement_name(&self, id: SeriesId) -> Option<Arc<str>> {
        let tree = self.read_tree();
        tree.series_node(id).map(|i| Arc::clone(tree.node_name(i)))
    }

    pub fn series_by_id(&self, id: SeriesId) -> Option<SeriesInfo> {
        let tree = self.read_tree();
        tree.series_node(id).map(|i| tree.series_info(i))
    }

    pub fn device(&self, path: &Path) -> Option<DeviceInfo> {
        let tree = self.read_tree();
        tree.find_device(path).and_then(|i| tree.device_info(i))
    }

    pub fn device_by_id(&self, id: DeviceId) -> Option<DeviceInfo> {
        let tree = self.read_tree();
        tree.device_by_id(id).and_then(|i| tree.device_info(i))
    }

    pub fn database_by_id(&self, id: DatabaseId) -> Option<DatabaseInfo> {
        let tree = self.read_tree();
        tree.database_by_id(id).and_then(|i| tree.database_info(i))
    }

    /// The measurements of one device in name order (a device table's columns).
    pub fn device_series(&self, device: &Path) -> Vec<SeriesInfo> {
        let mut nodes: Vec<PatternNode> = PathPattern::from(device).nodes().to_vec();
        nodes.push(PatternNode::Star);
        match PathPattern::from_nodes(nodes) {
            Ok(pattern) => self.list_series(&pattern, Page::all()),
            Err(_) => Vec::new(),
        }
    }

    // ---- listings -------------------------------------------------------

    /// SHOW TIMESERIES: series whose path matches, in path order.
    pub fn list_series(&self, pattern: &PathPattern, page: Page) -> Vec<SeriesInfo> {
        if page.limit == Some(0) {
            return Vec::new();
        }
        let tree = self.read_tree();
        let mut out = Vec::new();
        let mut skipped = 0;
        paged_walk(
            &tree,
            pattern,
            WalkOptions {
                ordered: true,
                ..Default::default()
            },
            &mut |idx| {
                if !tree.is_series(idx) {
                    return Flow::Continue;
                }
                if skipped < page.offset {
                    // Rows skipped by OFFSET are never built.
                    skipped += 1;
                    return Flow::Continue;
                }
                out.push(tree.series_info(idx));
                if page.limit.is_some_and(|l| out.len() >= l) {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        );
        out
    }

    /// COUNT TIMESERIES.
    pub fn count_series(&self, pattern: &PathPattern) -> u64 {
        let tree = self.read_tree();
        let mut n = 0u64;
        paged_walk(&tree, pattern, WalkOptions::default(), &mut |idx| {
            n += u64::from(tree.is_series(idx));
            Flow::Continue
        });
        n
    }

    /// COUNT TIMESERIES ... GROUP BY LEVEL=`level`: matching series counted
    /// by their ancestor at `level` (root is level 0), in path order.
    /// Series with fewer than `level + 1` nodes are not counted.
    pub fn count_series_by_level(&self, pattern: &PathPattern, level: usize) -> Vec<(Path, u64)> {
        let tree = self.read_tree();
        let mut counts: HashMap<NodeIdx, u64> = HashMap::new();
        tree.walk(pattern, WalkOptions::default(), &mut |idx, depth| {
            if depth >= level && tree.is_series(idx) {
                *counts
                    .entry(tree.ancestor_at(idx, depth, level))
                    .or_default() += 1;
            }
            Flow::Continue
        });
        let mut out: Vec<_> = counts
            .into_iter()
            .map(|(idx, n)| (tree.path(idx), n))
            .collect();
        out.sort_unstable();
        out
    }

    /// SHOW DEVICES: devices whose path matches, in path order.
    pub fn list_devices(&self, pattern: &PathPattern, page: Page) -> Vec<DeviceInfo> {
        if page.limit == Some(0) {
            return Vec::new();
        }
        let tree = self.read_tree();
        let mut out = Vec::new();
        let mut skipped = 0;
        paged_walk(
            &tree,
            pattern,
            WalkOptions {
                ordered: true,
                skip_measurements: true,
                ..Default::default()
            },
            &mut |idx| {
                let Some(info) = tree.device_info(idx) else {
                    return Flow::Continue;
                };
                if skipped < page.offset {
                    skipped += 1;
                    return Flow::Continue;
                }
                out.push(info);
                if page.limit.is_some_and(|l| out.len() >= l) {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        );
        out
    }

    /// COUNT DEVICES.
    pub fn count_devices(&self, pattern: &PathPattern) -> u64 {
        let tree = self.read_tree();
        let mut n = 0u64;
        paged_walk(&tree, pattern, NO_MEASUREMENTS, &mut |idx| {
            n += u64::from(tree.is_device(idx));
            Flow::Continue
        });
        n
    }

    /// Every node of the tree (root excepted) whose path matches
    /// `pattern`, with its node type, in path order: `arbor.nodes`, and
    /// SHOW CHILD PATHS/NODES over it (the children of `p` match `p.*`).
    pub fn list_nodes(&self, pattern: &PathPattern, page: Page) -> Vec<NodeInfo> {
        if page.limit == Some(0) {
            return Vec::new();
        }
        let tree = self.read_tree();
        let mut out = Vec::new();
        let mut skipped = 0;
        let ordered = WalkOptions {
            ordered: true,
            ..Default::default()
        };
        paged_walk(&tree, pattern, ordered, &mut |idx| {
            if tree.node_type(idx) == NodeType::Root {
                return Flow::Continue;
            }
            if skipped < page.offset {
                skipped += 1;
                return Flow::Continue;
            }
            out.push(NodeInfo {
                path: tree.path(idx),
                node_type: tree.node_type(idx),
            });
            if page.limit.is_some_and(|l| out.len() >= l) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        out
    }

    // ---- deleting -----------------------------------------------------------

    /// DELETE TIMESERIES: removes every series matching `pattern` and
    /// returns them (ids for storage to drop data). Devices and inner nodes
    /// left empty are removed; databases stay.
    pub fn delete_series(&self, pattern: &PathPattern) -> Result<Vec<DeletedSeries>> {
        let mut w = self.lock_writer();
        let deleted = {
            let tree = self.read_tree();
            let mut deleted = Vec::new();
            paged_walk(
                &tree,
                pattern,
                WalkOptions {
                    ordered: true,
                    ..Default::default()
                },
                &mut |idx| {
                    if tree.is_series(idx) {
                        let h = tree.handle(idx);
                        deleted.push(DeletedSeries {
                            id: h.id,
                            device: h.device,
                            database: h.database,
                            path: tree.path(idx),
                        });
                    }
                    Flow::Continue
                },
            );
            deleted
        };
        if deleted.is_empty() {
            return Err(Error::SeriesNotFound {
                path: pattern.to_string(),
            });
        }
        let records: Vec<_> = deleted
            .chunks(DELETE_IDS_PER_RECORD)
            .map(|chunk| Record::DeleteSeries {
                ids: chunk.iter().map(|d| d.id.0).collect(),
            })
            .collect();
        self.read_tree().validate(&records)?;
        self.commit(&mut w, &records)?;
        Ok(deleted)
    }
}

fn check_config(config: &CatalogConfig) -> Result<()> {
    if config.database_level == 0 {
        return Err(Error::invalid_path(
            "root",
            "database_level must be at least 1: root itself cannot be a database",
        ));
    }
    Ok(())
}

/// For queries about devices and inner nodes, which never look at leaves.
const NO_MEASUREMENTS: WalkOptions = WalkOptions {
    ordered: false,
    stop_at_databases: false,
    skip_measurements: true,
};

/// Walk calling `visit` with matched node indexes.
fn paged_walk(
    tree: &Tree,
    pattern: &PathPattern,
    opts: WalkOptions,
    visit: &mut dyn FnMut(NodeIdx) -> Flow,
) {
    tree.walk(pattern, opts, &mut |idx, _| visit(idx));
}

/// Database nodes matching `pattern`, in path order.
fn database_nodes(tree: &Tree, pattern: &PathPattern) -> Vec<NodeIdx> {
    let mut out = Vec::new();
    let opts = WalkOptions {
        ordered: true,
        stop_at_databases: true,
        skip_measurements: true,
    };
    tree.walk(pattern, opts, &mut |idx, _| {
        if tree.is_database(idx) {
            out.push(idx);
            Flow::SkipChildren
        } else {
            Flow::Continue
        }
    });
    out
}

fn dropped_database(tree: &Tree, idx: NodeIdx) -> Result<DroppedDatabase> {
    let info = tree
        .database_info(idx)
        .ok_or_else(|| Error::Internal("database node without a database".into()))?;
    let (devices, series) = tree.subtree_ids(idx);
    Ok(DroppedDatabase {
        id: info.id,
        path: info.path,
        devices,
        series,
    })
}
