//! One Arbor instance: the catalog and one storage engine per database,
//! under a data directory. Shared by every session.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use catalog::{Catalog, CatalogConfig};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use storage::{CommitTicket, EngineConfig, SeriesStore, StorageEngine};

use crate::error::{Error, Result};

/// Default typed data a COPY gathers before logging it as one part of its
/// WAL group (`InstanceConfig::copy_part_bytes_max`, `provider::copy`).
/// Small, so the log is written on another core while the rest is parsed;
/// the group keeps logged parts in memory for its commit up to the engine's
/// `group_resident_bytes_max`.
pub const COPY_PART_BYTES_MAX: usize = 2 << 20;

/// Settings of an instance.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub data_dir: PathBuf,
    pub catalog: CatalogConfig,
    /// Template for every database's engine.
    pub engine: EngineConfig,
    /// Memory all running queries may hold at once.
    pub query_memory_bytes_max: usize,
    /// Typed data a COPY gathers before logging it as a part of its WAL
    /// group (see `provider::copy`).
    pub copy_part_bytes_max: usize,
    /// The users the server knows (its configured user), listed as roles
    /// in `pg_authid`/`pg_roles`/`pg_user`.
    pub users: Vec<String>,
}

impl InstanceConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        InstanceConfig {
            data_dir: data_dir.into(),
            catalog: CatalogConfig::default(),
            engine: EngineConfig::default(),
            query_memory_bytes_max: 1 << 30,
            copy_part_bytes_max: COPY_PART_BYTES_MAX,
            users: Vec::new(),
        }
    }
}

/// The catalog and the open storage engines.
pub struct Instance {
    config: InstanceConfig,
    catalog: Arc<Catalog>,
    engines: RwLock<HashMap<String, Arc<StorageEngine>>>,
    /// Query execution resources shared by every session: one memory pool
    /// bounded by `query_memory_bytes_max`.
    runtime: Arc<RuntimeEnv>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

impl Instance {
    /// Open (or create) the instance in `config.data_dir`: the catalog, then
    /// the engine of every database it lists (which replays its WAL).
    pub fn open(config: InstanceConfig) -> Result<Arc<Instance>> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Storage(storage::Error::Io { path: config.data_dir.clone(), source: e }))?;
        let catalog = Arc::new(Catalog::open(config.data_dir.join("catalog"), config.catalog.clone())?);
        // Past the budget a query fails with 53200 rather than spilling to
        // an unbounded temporary directory.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(config.query_memory_bytes_max.max(1 << 20), 1.0)
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()?;
        let instance = Arc::new(Instance { config, catalog, engines: RwLock::new(HashMap::new()), runtime });
        for db in instance.catalog.list_databases(&catalog::PathPattern::all()) {
            instance.engine(&db.path.to_string())?;
        }
        Ok(instance)
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    fn engine_dir(&self, database: &str) -> PathBuf {
        self.config.data_dir.join("databases").join(database)
    }

    /// The storage of `database` (e.g. `root.ln`), opened on first use:
    /// the query layer reads and writes only through [`SeriesStore`].
    pub fn store(&self, database: &str) -> Result<Arc<dyn SeriesStore>> {
        Ok(self.engine(database)?)
    }

    fn engine(&self, database: &str) -> Result<Arc<StorageEngine>> {
        if let Some(e) = self.engines.read().map_err(|_| poisoned())?.get(database) {
            return Ok(e.clone());
        }
        let mut engines = self.engines.write().map_err(|_| poisoned())?;
        if let Some(e) = engines.get(database) {
            return Ok(e.clone());
        }
        let mut config = self.config.engine.clone();
        config.ttl_ms = self.ttl_ms(database);
        let engine = StorageEngine::open(self.engine_dir(database), config)?;
        engines.insert(database.to_string(), engine.clone());
        Ok(engine)
    }

    /// The TTL `database` keeps data for: its own, or the configured
    /// default (`None`: forever).
    pub fn ttl_ms(&self, database: &str) -> Option<i64> {
        let own = catalog::Path::parse(database).ok().and_then(|p| self.catalog.database(&p)).and_then(|d| d.ttl_ms);
        own.or(self.config.engine.ttl_ms)
    }

    /// SET/UNSET TTL of the databases `pattern` matches, in the catalog
    /// and in their engines.
    pub fn set_ttl(&self, pattern: &catalog::PathPattern, ttl_ms: Option<i64>) -> Result<()> {
        for database in self.catalog.set_ttl(pattern, ttl_ms)? {
            let name = database.path.to_string();
            self.engine(&name)?.set_ttl(self.ttl_ms(&name))?;
        }
        Ok(())
    }

    /// Close and delete the engine of a dropped database.
    pub fn drop_engine(&self, database: &str) -> Result<()> {
        let engine = self.engines.write().map_err(|_| poisoned())?.remove(database);
        match engine {
            Some(e) => e.drop_all()?,
            None => remove_dir(&self.engine_dir(database))?,
        }
        Ok(())
    }

    /// Flush every engine's memtables (FLUSH, and shutdown).
    pub fn flush_all(&self) -> Result<()> {
        let engines: Vec<_> = self.engines.read().map_err(|_| poisoned())?.values().cloned().collect();
        for e in engines {
            e.flush()?;
        }
        Ok(())
    }

    /// Flush and close every engine.
    pub fn close(&self) -> Result<()> {
        let engines: Vec<_> = self.engines.write().map_err(|_| poisoned())?.drain().map(|(_, e)| e).collect();
        for e in engines {
            e.close()?;
        }
        Ok(())
    }
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Storage(storage::Error::Io { path: path.to_path_buf(), source: e })),
    }
}

fn poisoned() -> Error {
    Error::Unsupported("instance state lock poisoned by an earlier panic".into())
}

/// Writes logged and visible but not yet synced, per store: the statements
/// of one message wait for them together, so they share WAL syncs.
#[derive(Default, Debug)]
pub struct PendingCommits {
    tickets: Vec<(Arc<dyn SeriesStore>, CommitTicket)>,
}

impl PendingCommits {
    /// Remember that `store` must be durable up to `ticket`.
    pub fn add(&mut self, store: Arc<dyn SeriesStore>, ticket: CommitTicket) {
        match self.tickets.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &store)) {
            Some((_, t)) => *t = (*t).max(ticket),
            None => self.tickets.push((store, ticket)),
        }
    }

    /// Wait until every remembered write is durable (blocking).
    /// Whether no write waits to be made durable.
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
    }

    pub fn wait(self) -> Result<()> {
        for (store, ticket) in self.tickets {
            store.wait_durable(ticket)?;
        }
        Ok(())
    }
}
