//! Configuration: defaults, the TOML file (`--config`), then command-line
//! flags. Every setting is documented in `arbor.example.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AuthMethod {
    /// SCRAM-SHA-256 password authentication (PostgreSQL's default).
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// No password: any user may connect (local use only).
    Trust,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServerSection {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) data_dir: PathBuf,
    /// Connections served at once; further ones are refused with 53300.
    pub(crate) max_connections: usize,
    /// Memory all running queries may hold at once (sorts, aggregates,
    /// joins); a query that needs more fails with 53200.
    pub(crate) query_memory_bytes_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthSection {
    pub(crate) method: AuthMethod,
    pub(crate) user: String,
    pub(crate) password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WalFsync {
    EveryBatch,
    Interval,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StorageSection {
    pub(crate) wal_fsync: WalFsync,
    pub(crate) wal_fsync_interval_ms: u64,
    pub(crate) wal_segment_bytes: u64,
    pub(crate) memtable_bytes_max: usize,
    pub(crate) memory_soft_limit_bytes: usize,
    pub(crate) memory_hard_limit_bytes: usize,
    pub(crate) time_partition_ms: i64,
    pub(crate) seq_file_target_bytes: u64,
    /// Typed data a COPY gathers before logging it as one part of its WAL
    /// group (logged on another core while the rest is parsed).
    pub(crate) copy_part_bytes_max: usize,
    /// A COPY keeps the parts it logged in memory for its commit while they
    /// take at most this (applied at once, seen whole by readers); later
    /// parts are read back from the WAL.
    pub(crate) group_resident_bytes_max: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SchemaSection {
    /// Create series (and their database) on first insert.
    pub(crate) auto_create_schema: bool,
    /// Level of the auto-created database: 1 makes `root.ln` for `root.ln.wf01.wt01`.
    pub(crate) database_level: usize,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) server: ServerSection,
    pub(crate) auth: AuthSection,
    pub(crate) storage: StorageSection,
    pub(crate) schema: SchemaSection,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            host: "127.0.0.1".into(),
            port: 6667,
            data_dir: PathBuf::from("./data"),
            max_connections: 256,
            query_memory_bytes_max: 1 << 30,
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            method: AuthMethod::ScramSha256,
            user: "root".into(),
            password: "root".into(),
        }
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        let e = storage::EngineConfig::default();
        StorageSection {
            wal_fsync: WalFsync::EveryBatch,
            wal_fsync_interval_ms: 10,
            wal_segment_bytes: e.wal_segment_bytes,
            memtable_bytes_max: e.memtable_bytes_max,
            memory_soft_limit_bytes: e.memory_soft_limit_bytes,
            memory_hard_limit_bytes: e.memory_hard_limit_bytes,
            time_partition_ms: e.time_partition_ms,
            seq_file_target_bytes: e.seq_file_target_bytes,
            copy_part_bytes_max: sql::provider::COPY_PART_BYTES_MAX,
            group_resident_bytes_max: storage::EngineConfig::default().group_resident_bytes_max,
        }
    }
}

impl Default for SchemaSection {
    fn default() -> Self {
        let c = catalog::CatalogConfig::default();
        SchemaSection {
            auto_create_schema: c.auto_create_schema,
            database_level: c.database_level,
        }
    }
}

impl Config {
    /// Read a TOML file; unknown keys are errors so typos are not silently ignored.
    pub(crate) fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The instance settings this configuration describes.
    pub(crate) fn instance_config(&self) -> sql::InstanceConfig {
        let mut c = sql::InstanceConfig::new(&self.server.data_dir);
        c.query_memory_bytes_max = self.server.query_memory_bytes_max;
        c.users = vec![self.auth.user.clone()];
        c.catalog.auto_create_schema = self.schema.auto_create_schema;
        c.catalog.database_level = self.schema.database_level;
        let s = &self.storage;
        c.engine.wal_fsync = match s.wal_fsync {
            WalFsync::EveryBatch => storage::FsyncPolicy::EveryBatch,
            WalFsync::Interval => storage::FsyncPolicy::IntervalMs(s.wal_fsync_interval_ms),
        };
        c.engine.wal_segment_bytes = s.wal_segment_bytes;
        c.engine.memtable_bytes_max = s.memtable_bytes_max;
        c.engine.memory_soft_limit_bytes = s.memory_soft_limit_bytes;
        c.engine.memory_hard_limit_bytes = s.memory_hard_limit_bytes;
        c.engine.time_partition_ms = s.time_partition_ms;
        c.engine.seq_file_target_bytes = s.seq_file_target_bytes;
        c.copy_part_bytes_max = s.copy_part_bytes_max;
        c.engine.group_resident_bytes_max = s.group_resident_bytes_max;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("arbor.example.toml");
        let c = Config::from_file(&path).unwrap();
        let d = Config::default();
        assert_eq!(c.server.port, d.server.port);
        assert_eq!(c.auth.method, AuthMethod::ScramSha256);
        assert_eq!(c.storage.memtable_bytes_max, d.storage.memtable_bytes_max);
        assert_eq!(c.schema.auto_create_schema, d.schema.auto_create_schema);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Config>("[server]\nprot = 1\n").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }
}
