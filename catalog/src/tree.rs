//! The in-memory series tree: nodes in an arena, the id and device-path
//! indexes, applying schema records, and matching patterns by walking the
//! tree.
//!
//! Every change goes through [`Tree::validate`] then [`Tree::apply`], both
//! for live schema changes and when replaying the log, so a recovered tree
//! is built by exactly the code that built the original.
//!
//! Memory matters here (millions of series): a measurement is one 48-byte
//! arena slot plus its name (shared between the slot and the parent's
//! child map) plus one entry in the id index; tags, attributes and alias
//! live behind an `Option<Box<_>>` that is `None` for most series.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use tsfile::{Compression, DataType, Encoding};

use crate::error::{Error, Result};
use crate::path::{check_node, write_node, Path};
use crate::pattern::{PathPattern, PatternNode};
use crate::record::{NewSeries, Record};
use crate::schema::{
    DatabaseId, DatabaseInfo, DeviceId, DeviceInfo, NodeType, SeriesHandle, SeriesId, SeriesInfo,
};

pub(crate) type NodeIdx = u32;
pub(crate) const ROOT: NodeIdx = 0;

/// Most series per `CreateSeries` record in a snapshot, to keep records small.
const SNAPSHOT_SERIES_PER_RECORD: usize = 4096;

pub(crate) struct Node {
    name: Arc<str>,
    parent: NodeIdx,
    kind: NodeKind,
}

enum NodeKind {
    Inner(Box<Inner>),
    Series(SeriesNode),
}

#[derive(Default)]
struct Inner {
    children: HashMap<Arc<str>, NodeIdx>,
    database: Option<DatabaseId>,
    device: Option<Box<DeviceState>>,
}

struct DeviceState {
    id: DeviceId,
    database: DatabaseId,
    aligned: bool,
    /// Measurements directly under the device; the device state goes away at 0.
    series_count: u32,
    /// Alias → measurement node. Empty (no allocation) for most devices.
    aliases: HashMap<Box<str>, NodeIdx>,
}

struct SeriesNode {
    id: SeriesId,
    data_type: DataType,
    encoding: Encoding,
    compression: Compression,
    extra: Option<Box<SeriesExtra>>,
}

struct SeriesExtra {
    alias: Option<String>,
    tags: BTreeMap<String, String>,
    attributes: BTreeMap<String, String>,
    max_point_number: Option<u8>,
}

/// What a pattern walk's visitor tells the walker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Do not descend below the node just visited.
    SkipChildren,
    Stop,
}

/// How to walk.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WalkOptions {
    /// Visit children in name order (listings); counts skip the sorting.
    pub(crate) ordered: bool,
    /// Do not descend below database nodes (databases cannot nest).
    pub(crate) stop_at_databases: bool,
    /// Never visit measurements: do not enter a device whose children are
    /// all measurements (device and child-path queries).
    pub(crate) skip_measurements: bool,
}

/// Measurement names that would collide with the relational `time` column.
fn is_reserved_measurement(name: &str) -> bool {
    name.eq_ignore_ascii_case("time") || name.eq_ignore_ascii_case("timestamp")
}

fn path_string(nodes: &[String]) -> String {
    Path::from_trusted(nodes.to_vec()).to_string()
}

/// `parent.child` printed on demand: validation passes it to checks that
/// only format it when they fail, so the common path allocates nothing.
struct ChildPathText<'a> {
    parent: &'a [String],
    child: &'a str,
}

impl std::fmt::Display for ChildPathText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for node in self.parent {
            write_node(f, node)?;
            f.write_str(".")?;
        }
        write_node(f, self.child)
    }
}

pub(crate) struct Tree {
    nodes: Vec<Option<Node>>,
    free: Vec<NodeIdx>,
    series: HashMap<SeriesId, NodeIdx>,
    devices: HashMap<DeviceId, NodeIdx>,
    /// Canonical device path text → device node: the write path's lookup.
    device_paths: HashMap<Box<str>, NodeIdx>,
    databases: HashMap<DatabaseId, NodeIdx>,
    /// Databases with a TTL of their own (ms).
    ttls: HashMap<DatabaseId, i64>,
    /// Nodes entered by pattern walks, so tests can check walks stay narrow.
    #[cfg(test)]
    walked: std::sync::atomic::AtomicUsize,
}

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            nodes: vec![Some(Node {
                name: Arc::from("root"),
                parent: ROOT,
                kind: NodeKind::Inner(Box::default()),
            })],
            free: Vec::new(),
            series: HashMap::new(),
            devices: HashMap::new(),
            device_paths: HashMap::new(),
            databases: HashMap::new(),
            ttls: HashMap::new(),
            #[cfg(test)]
            walked: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    pub(crate) fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub(crate) fn database_count(&self) -> usize {
        self.databases.len()
    }

    // ---- node access -------------------------------------------------

    fn node(&self, idx: NodeIdx) -> &Node {
        self.nodes[idx as usize]
            .as_ref()
            .expect("tree links point at live nodes")
    }

    fn node_mut(&mut self, idx: NodeIdx) -> &mut Node {
        self.nodes[idx as usize]
            .as_mut()
            .expect("tree links point at live nodes")
    }

    fn inner(&self, idx: NodeIdx) -> Option<&Inner> {
        match &self.node(idx).kind {
            NodeKind::Inner(inner) => Some(inner),
            NodeKind::Series(_) => None,
        }
    }

    fn inner_mut(&mut self, idx: NodeIdx) -> Option<&mut Inner> {
        match &mut self.node_mut(idx).kind {
            NodeKind::Inner(inner) => Some(inner),
            NodeKind::Series(_) => None,
        }
    }

    fn child(&self, idx: NodeIdx, name: &str) -> Option<NodeIdx> {
        self.inner(idx)?.children.get(name).copied()
    }

    /// The node at `nodes` (names only, no aliases).
    fn find(&self, nodes: &[String]) -> Option<NodeIdx> {
        if nodes.first().map(String::as_str) != Some("root") {
            return None;
        }
        let mut idx = ROOT;
        for name in &nodes[1..] {
            idx = self.child(idx, name)?;
        }
        Some(idx)
    }

    fn path_nodes(&self, mut idx: NodeIdx) -> Vec<String> {
        let mut names = Vec::new();
        while idx != ROOT {
            let node = self.node(idx);
            names.push(node.name.to_string());
            idx = node.parent;
        }
        names.push("root".to_string());
        names.reverse();
        names
    }

    pub(crate) fn path(&self, idx: NodeIdx) -> Path {
        Path::from_trusted(self.path_nodes(idx))
    }

    fn alloc(&mut self, name: Arc<str>, parent: NodeIdx, kind: NodeKind) -> NodeIdx {
        let node = Node {
            name: name.clone(),
            parent,
            kind,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.nodes[idx as usize] = Some(node);
                idx
            }
            None => {
                let idx = NodeIdx::try_from(self.nodes.len())
                    .expect("fewer than 4 billion nodes in the series tree");
                self.nodes.push(Some(node));
                idx
            }
        };
        if let Some(inner) = self.inner_mut(parent) {
            inner.children.insert(name, idx);
        }
        idx
    }

    /// Unlink `idx` from its parent and free its slot (not its subtree).
    fn release(&mut self, idx: NodeIdx) {
        let Some(node) = self.nodes[idx as usize].take() else {
            return;
        };
        if let Some(inner) = self.inner_mut(node.parent) {
            inner.children.remove(&node.name);
        }
        self.free.push(idx);
    }

    /// Free empty inner nodes from `idx` upwards, stopping at root, a
    /// database, a device or a node that still has children.
    fn prune_upwards(&mut self, mut idx: NodeIdx) {
        while idx != ROOT && self.nodes[idx as usize].is_some() {
            let node = self.node(idx);
            let parent = node.parent;
            match &node.kind {
                NodeKind::Inner(inner)
                    if inner.children.is_empty()
                        && inner.database.is_none()
                        && inner.device.is_none() => {}
                _ => return,
            }
            self.release(idx);
            idx = parent;
        }
    }

    /// The database at or above the node at `nodes`, walking down from root.
    fn database_over(&self, nodes: &[String]) -> Option<(DatabaseId, usize)> {
        let mut idx = ROOT;
        for (depth, name) in nodes.iter().enumerate().skip(1) {
            idx = self.child(idx, name)?;
            if let Some(db) = self.inner(idx).and_then(|i| i.database) {
                return Some((db, depth + 1));
            }
        }
        None
    }

    /// Path of the database that covers `nodes`, if any.
    pub(crate) fn database_path_over(&self, nodes: &[String]) -> Option<Path> {
        self.database_over(nodes)
            .map(|(_, len)| Path::from_trusted(nodes[..len].to_vec()))
    }

    fn database_path(&self, id: DatabaseId) -> Path {
        match self.databases.get(&id) {
            Some(&idx) => self.path(idx),
            None => Path::root(),
        }
    }

    /// Any database in the subtree of `idx` (for conflict messages).
    fn any_database_below(&self, idx: NodeIdx) -> Option<NodeIdx> {
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            if let Some(inner) = self.inner(i) {
                if inner.database.is_some() {
                    return Some(i);
                }
                stack.extend(inner.children.values().copied());
            }
        }
        None
    }

    // ---- lookups ------------------------------------------------------

    /// The series `measurement` (name or alias) of the device at `device`
    /// (its canonical path text): two hash lookups, no allocation.
    pub(crate) fn lookup(&self, device: &str, measurement: &str) -> Option<SeriesHandle> {
        let dev = *self.device_paths.get(device)?;
        self.series_under(dev, measurement)
            .map(|idx| self.handle(idx))
    }

    /// The measurement node `name` (or alias) under device node `dev`.
    pub(crate) fn series_under(&self, dev: NodeIdx, name: &str) -> Option<NodeIdx> {
        let inner = self.inner(dev)?;
        let idx = match inner.children.get(name) {
            Some(&idx) => idx,
            None => *inner.device.as_ref()?.aliases.get(name)?,
        };
        matches!(self.node(idx).kind, NodeKind::Series(_)).then_some(idx)
    }

    pub(crate) fn device_node(&self, device: &str) -> Option<NodeIdx> {
        self.device_paths.get(device).copied()
    }

    /// Device id and alignment of a device node, if it is a device.
    pub(crate) fn device_state(&self, idx: NodeIdx) -> Option<(DeviceId, bool)> {
        let dev = self.inner(idx)?.device.as_ref()?;
        Some((dev.id, dev.aligned))
    }

    /// The series at a full path (last node may be an alias).
    pub(crate) fn find_series(&self, path: &Path) -> Option<NodeIdx> {
        let device = self.find(&path.nodes()[..path.len() - 1])?;
        self.series_under(device, path.last())
    }

    pub(crate) fn find_device(&self, path: &Path) -> Option<NodeIdx> {
        let idx = self.find(path.nodes())?;
        self.inner(idx)?.device.is_some().then_some(idx)
    }

    pub(crate) fn find_database(&self, path: &Path) -> Option<NodeIdx> {
        let idx = self.find(path.nodes())?;
        self.inner(idx)?.database.is_some().then_some(idx)
    }

    pub(crate) fn series_node(&self, id: SeriesId) -> Option<NodeIdx> {
        self.series.get(&id).copied()
    }

    /// The last path node of `idx` (a measurement's own name).
    pub(crate) fn node_name(&self, idx: NodeIdx) -> &Arc<str> {
        &self.node(idx).name
    }

    pub(crate) fn device_by_id(&self, id: DeviceId) -> Option<NodeIdx> {
        self.devices.get(&id).copied()
    }

    pub(crate) fn database_by_id(&self, id: DatabaseId) -> Option<NodeIdx> {
        self.databases.get(&id).copied()
    }

    pub(crate) fn handle(&self, idx: NodeIdx) -> SeriesHandle {
        let node = self.node(idx);
        let NodeKind::Series(s) = &node.kind else {
            unreachable!("handle() is only called on measurement nodes")
        };
        let dev = self
            .inner(node.parent)
            .and_then(|i| i.device.as_ref())
            .expect("a measurement's parent is a device");
        SeriesHandle {
            id: s.id,
            device: dev.id,
            database: dev.database,
            data_type: s.data_type,
            encoding: s.encoding,
            compression: s.compression,
            aligned: dev.aligned,
            max_point_number: s.extra.as_ref().and_then(|e| e.max_point_number),
        }
    }

    pub(crate) fn series_info(&self, idx: NodeIdx) -> SeriesInfo {
        let handle = self.handle(idx);
        let NodeKind::Series(s) = &self.node(idx).kind else {
            unreachable!("series_info() is only called on measurement nodes")
        };
        let (alias, tags, attributes) = match &s.extra {
            Some(e) => (e.alias.clone(), e.tags.clone(), e.attributes.clone()),
            None => (None, BTreeMap::new(), BTreeMap::new()),
        };
        SeriesInfo {
            path: self.path(idx),
            database: self.database_path(handle.database),
            handle,
            alias,
            tags,
            attributes,
        }
    }

    pub(crate) fn device_info(&self, idx: NodeIdx) -> Option<DeviceInfo> {
        let dev = self.inner(idx)?.device.as_ref()?;
        Some(DeviceInfo {
            id: dev.id,
            path: self.path(idx),
            database_id: dev.database,
            database: self.database_path(dev.database),
            aligned: dev.aligned,
            series_count: u64::from(dev.series_count),
        })
    }

    pub(crate) fn database_info(&self, idx: NodeIdx) -> Option<DatabaseInfo> {
        let id = self.inner(idx)?.database?;
        Some(DatabaseInfo {
            id,
            path: self.path(idx),
            ttl_ms: self.ttls.get(&id).copied(),
        })
    }

    pub(crate) fn is_series(&self, idx: NodeIdx) -> bool {
        matches!(self.node(idx).kind, NodeKind::Series(_))
    }

    pub(crate) fn is_device(&self, idx: NodeIdx) -> bool {
        self.inner(idx).is_some_and(|i| i.device.is_some())
    }

    pub(crate) fn is_database(&self, idx: NodeIdx) -> bool {
        self.inner(idx).is_some_and(|i| i.database.is_some())
    }

    /// Ancestor of `idx` at `level` (root is level 0), given `idx`'s depth.
    pub(crate) fn ancestor_at(&self, mut idx: NodeIdx, depth: usize, level: usize) -> NodeIdx {
        for _ in level..depth {
            idx = self.node(idx).parent;
        }
        idx
    }

    pub(crate) fn node_type(&self, idx: NodeIdx) -> NodeType {
        if idx == ROOT {
            return NodeType::Root;
        }
        match &self.node(idx).kind {
            NodeKind::Series(_) => NodeType::Timeseries,
            NodeKind::Inner(inner) if inner.database.is_some() => NodeType::Database,
            NodeKind::Inner(inner) if inner.device.is_some() => NodeType::Device,
            NodeKind::Inner(_) => {
                let mut up = self.node(idx).parent;
                while up != ROOT {
                    if self.is_database(up) {
                        return NodeType::Internal;
                    }
                    up = self.node(up).parent;
                }
                NodeType::DatabaseInternal
            }
        }
    }

    /// Every series id and device id in the subtree of `idx`.
    pub(crate) fn subtree_ids(&self, idx: NodeIdx) -> (Vec<DeviceId>, Vec<SeriesId>) {
        let (mut devices, mut series) = (Vec::new(), Vec::new());
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            match &self.node(i).kind {
                NodeKind::Series(s) => series.push(s.id),
                NodeKind::Inner(inner) => {
                    if let Some(d) = &inner.device {
                        devices.push(d.id);
                    }
                    stack.extend(inner.children.values().copied());
                }
            }
        }
        devices.sort_unstable();
        series.sort_unstable();
        (devices, series)
    }

    // ---- pattern walk -------------------------------------------------

    /// Visit every node whose full path matches `pattern`, depth first.
    /// The walk follows the pattern: a literal node is a hash lookup and
    /// only wildcards scan children, so `root.ln.d1.*` touches one device
    /// however large the tree is.
    pub(crate) fn walk(
        &self,
        pattern: &PathPattern,
        opts: WalkOptions,
        visit: &mut dyn FnMut(NodeIdx, usize) -> Flow,
    ) {
        let p = pattern.nodes();
        // Patterns always start with the literal `root` (checked on parse),
        // which matches the root node: position 1 is next.
        if p.first() != Some(&PatternNode::Literal("root".into())) {
            return;
        }
        self.walk_node(ROOT, 0, 1u128 << 1, p, opts, visit);
    }

    /// `states` has bit `i` set if `p[..i]` matches the path to `idx`.
    fn walk_node(
        &self,
        idx: NodeIdx,
        depth: usize,
        states: u128,
        p: &[PatternNode],
        opts: WalkOptions,
        visit: &mut dyn FnMut(NodeIdx, usize) -> Flow,
    ) -> Flow {
        #[cfg(test)]
        self.walked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = p.len();
        if states & (1u128 << n) != 0 {
            match visit(idx, depth) {
                Flow::Stop => return Flow::Stop,
                Flow::SkipChildren => return Flow::Continue,
                Flow::Continue => {}
            }
        }
        let active = states & !(1u128 << n);
        if active == 0 {
            return Flow::Continue;
        }
        let Some(inner) = self.inner(idx) else {
            return Flow::Continue;
        };
        if opts.stop_at_databases && inner.database.is_some() {
            return Flow::Continue;
        }
        if opts.skip_measurements
            && inner
                .device
                .as_ref()
                .is_some_and(|d| d.series_count as usize == inner.children.len())
        {
            return Flow::Continue;
        }
        let positions = || (0..n).filter(move |i| active & (1u128 << i) != 0);
        let aliases = inner.device.as_ref().map(|d| &d.aliases);

        let mut next: Vec<(NodeIdx, u128)> = Vec::new();
        let add = |next: &mut Vec<(NodeIdx, u128)>, c: NodeIdx, bits: u128| match next
            .iter_mut()
            .find(|(i, _)| *i == c)
        {
            Some(entry) => entry.1 |= bits,
            None => next.push((c, bits)),
        };
        let all_literal = positions().all(|i| matches!(p[i], PatternNode::Literal(_)));
        if all_literal {
            for i in positions() {
                let PatternNode::Literal(name) = &p[i] else {
                    continue;
                };
                if let Some(&c) = inner.children.get(name.as_str()) {
                    add(&mut next, c, 1u128 << (i + 1));
                }
            }
        } else {
            for (name, &c) in &inner.children {
                let mut bits = 0u128;
                for i in positions() {
                    match &p[i] {
                        PatternNode::DoubleStar => bits |= (1u128 << i) | (1u128 << (i + 1)),
                        node if node.matches_name(name) => bits |= 1u128 << (i + 1),
                        _ => {}
                    }
                }
                if bits != 0 {
                    next.push((c, bits));
                }
            }
        }
        // A literal also matches a measurement by its alias.
        if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
            for i in positions() {
                if let PatternNode::Literal(name) = &p[i] {
                    if let Some(&c) = aliases.get(name.as_str()) {
                        add(&mut next, c, 1u128 << (i + 1));
                    }
                }
            }
        }
        if opts.ordered && next.len() > 1 {
            next.sort_unstable_by(|a, b| self.node(a.0).name.cmp(&self.node(b.0).name));
        }
        for (c, bits) in next {
            if self.walk_node(c, depth + 1, bits, p, opts, visit) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    // ---- validating and applying records -----------------------------

    /// Check that `records`, applied in order, are valid. Only
    /// `CreateDatabase` followed by `CreateSeries` in one batch depend on
    /// each other (auto-creation), so earlier new databases are passed on.
    pub(crate) fn validate(&self, records: &[Record]) -> Result<()> {
        let mut pending: Vec<&[String]> = Vec::new();
        for record in records {
            self.validate_one(record, &pending)?;
            if let Record::CreateDatabase { path, .. } = record {
                pending.push(path);
            }
        }
        Ok(())
    }

    fn validate_one(&self, record: &Record, pending_databases: &[&[String]]) -> Result<()> {
        match record {
            Record::CreateDatabase { id, path } => {
                self.validate_create_database(DatabaseId(*id), path, pending_databases)
            }
            Record::CreateSeries {
                device_id,
                device,
                aligned,
                series,
            } => self.validate_create_series(
                DeviceId(*device_id),
                device,
                *aligned,
                series,
                pending_databases,
            ),
            Record::DropDatabase { id } | Record::SetTtl { id, .. } => {
                match self.databases.get(&DatabaseId(*id)) {
                    Some(_) => Ok(()),
                    None => Err(Error::Internal(format!("database id {id} does not exist"))),
                }
            }
            Record::DeleteSeries { ids } => {
                let mut seen = HashSet::with_capacity(ids.len());
                for id in ids {
                    if !self.series.contains_key(&SeriesId(*id)) || !seen.insert(*id) {
                        return Err(Error::Internal(format!(
                            "series id {id} does not exist or is deleted twice"
                        )));
                    }
                }
                Ok(())
            }
            Record::SnapshotHeader { .. } | Record::SnapshotEnd { .. } => Err(Error::Internal(
                "snapshot framing record outside a snapshot".into(),
            )),
        }
    }

    fn validate_create_database(
        &self,
        id: DatabaseId,
        nodes: &[String],
        pending: &[&[String]],
    ) -> Result<()> {
        let path = Path::from_nodes(nodes.iter().cloned())?;
        let text = path.to_string();
        if path.len() < 2 {
            return Err(Error::invalid_path(
                text,
                "a database needs at least two levels (root.<name>)",
            ));
        }
        if self.databases.contains_key(&id) {
            return Err(Error::Internal(format!("database id {id} already in use")));
        }
        for other in pending {
            if other.starts_with(nodes) || nodes.starts_with(other) {
                return Err(Error::DatabaseConflict {
                    path: text,
                    existing: path_string(other),
                });
            }
        }
        let mut idx = ROOT;
        for (depth, name) in nodes.iter().enumerate().skip(1) {
            let Some(c) = self.child(idx, name) else {
                return Ok(());
            };
            idx = c;
            let last = depth + 1 == nodes.len();
            match &self.node(idx).kind {
                NodeKind::Series(_) => {
                    return Err(Error::PathIsMeasurement {
                        path: path_string(&nodes[..=depth]),
                    })
                }
                NodeKind::Inner(inner) if inner.database.is_some() => {
                    return Err(if last {
                        Error::DatabaseAlreadyExists { path: text }
                    } else {
                        Error::DatabaseConflict {
                            path: text,
                            existing: path_string(&nodes[..=depth]),
                        }
                    });
                }
                NodeKind::Inner(_) => {}
            }
        }
        // The node exists and is no database: nodes outside databases only
        // exist on the way to one, so there is a database below.
        let existing = self
            .any_database_below(idx)
            .map(|d| self.path(d).to_string())
            .unwrap_or_default();
        Err(Error::DatabaseConflict {
            path: text,
            existing,
        })
    }

    fn validate_create_series(
        &self,
        device_id: DeviceId,
        nodes: &[String],
        aligned: bool,
        series: &[NewSeries],
        pending: &[&[String]],
    ) -> Result<()> {
        let device = Path::from_nodes(nodes.iter().cloned())?;
        if device.len() < 2 {
            return Err(Error::invalid_path(
                device.to_string(),
                "a time series needs a device below root",
            ));
        }
        // Walk down the device path: every existing node must be inner, and
        // a database must cover the device.
        let mut idx = Some(ROOT);
        let mut has_database = pending.iter().any(|p| nodes.starts_with(p));
        for (depth, name) in nodes.iter().enumerate().skip(1) {
            let Some(c) = idx.and_then(|i| self.child(i, name)) else {
                idx = None;
                break;
            };
            match &self.node(c).kind {
                NodeKind::Series(_) => {
                    return Err(Error::PathIsMeasurement {
                        path: path_string(&nodes[..=depth]),
                    })
                }
                NodeKind::Inner(inner) => has_database |= inner.database.is_some(),
            }
            idx = Some(c);
        }
        if !has_database {
            return Err(Error::DatabaseNotSet {
                path: device.to_string(),
            });
        }
        let existing = idx.and_then(|i| self.inner(i));
        match existing.and_then(|i| i.device.as_ref()) {
            Some(dev) => {
                if dev.id != device_id {
                    return Err(Error::Internal(format!(
                        "device {device} has id {}, record says {device_id}",
                        dev.id
                    )));
                }
                if dev.aligned != aligned {
                    return Err(Error::AlignmentMismatch {
                        device: device.to_string(),
                        aligned: dev.aligned,
                    });
                }
            }
            None => {
                if self.devices.contains_key(&device_id) {
                    return Err(Error::Internal(format!(
                        "device id {device_id} already in use"
                    )));
                }
            }
        }
        // Names and aliases must be unique among the device's measurements.
        let mut taken: HashSet<&str> = HashSet::new();
        let mut ids = HashSet::new();
        for s in series {
            let text = ChildPathText {
                parent: nodes,
                child: &s.name,
            };
            let spath = || text.to_string();
            check_node(&text, &s.name)?;
            if is_reserved_measurement(&s.name) {
                return Err(Error::invalid_path(
                    spath(),
                    format!("{:?} is reserved for the time column", s.name),
                ));
            }
            if self.series.contains_key(&SeriesId(s.id)) || !ids.insert(s.id) {
                return Err(Error::Internal(format!(
                    "series id {} already in use",
                    s.id
                )));
            }
            check_series_type(&text, s.data_type, s.encoding, s.compression)?;
            if let Some(inner) = existing {
                if let Some(&c) = inner.children.get(s.name.as_str()) {
                    return Err(if self.is_series(c) {
                        Error::SeriesAlreadyExists { path: spath() }
                    } else {
                        Error::PathAlreadyExists { path: spath() }
                    });
                }
            }
            if !taken.insert(&s.name) || self.is_alias(existing, &s.name) {
                return Err(Error::SeriesAlreadyExists { path: spath() });
            }
            if let Some(alias) = &s.alias {
                check_node(&text, alias)?;
                let clash = existing.is_some_and(|i| i.children.contains_key(alias.as_str()))
                    || self.is_alias(existing, alias)
                    || !taken.insert(alias);
                if clash {
                    return Err(Error::AliasAlreadyExists {
                        path: spath(),
                        alias: alias.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn is_alias(&self, inner: Option<&Inner>, name: &str) -> bool {
        inner
            .and_then(|i| i.device.as_ref())
            .is_some_and(|d| d.aliases.contains_key(name))
    }

    /// Apply one validated record.
    pub(crate) fn apply(&mut self, record: &Record) {
        match record {
            Record::CreateDatabase { id, path } => {
                let idx = self.make_inner_path(path);
                if let Some(inner) = self.inner_mut(idx) {
                    inner.database = Some(DatabaseId(*id));
                }
                self.databases.insert(DatabaseId(*id), idx);
            }
            Record::CreateSeries {
                device_id,
                device,
                aligned,
                series,
            } => self.apply_create_series(DeviceId(*device_id), device, *aligned, series),
            Record::DropDatabase { id } => {
                if let Some(idx) = self.databases.get(&DatabaseId(*id)).copied() {
                    self.remove_subtree(idx);
                }
                self.ttls.remove(&DatabaseId(*id));
            }
            Record::SetTtl { id, ttl_ms } => match ttl_ms {
                Some(ms) => {
                    self.ttls.insert(DatabaseId(*id), *ms);
                }
                None => {
                    self.ttls.remove(&DatabaseId(*id));
                }
            },
            Record::DeleteSeries { ids } => self.apply_delete_series(ids),
            Record::SnapshotHeader { .. } | Record::SnapshotEnd { .. } => {}
        }
    }

    /// The inner node at `nodes`, creating missing ones.
    fn make_inner_path(&mut self, nodes: &[String]) -> NodeIdx {
        let mut idx = ROOT;
        for name in &nodes[1..] {
            idx = match self.child(idx, name) {
                Some(c) => c,
                None => self.alloc(
                    Arc::from(name.as_str()),
                    idx,
                    NodeKind::Inner(Box::default()),
                ),
            };
        }
        idx
    }

    fn apply_create_series(
        &mut self,
        device_id: DeviceId,
        nodes: &[String],
        aligned: bool,
        series: &[NewSeries],
    ) {
        let database = self.database_over(nodes).map(|(db, _)| db);
        let dev = self.make_inner_path(nodes);
        let is_new_device = self.inner(dev).is_some_and(|i| i.device.is_none());
        if is_new_device {
            let Some(database) = database else {
                return;
            };
            if let Some(inner) = self.inner_mut(dev) {
                inner.device = Some(Box::new(DeviceState {
                    id: device_id,
                    database,
                    aligned,
                    series_count: 0,
                    aliases: HashMap::new(),
                }));
            }
            self.devices.insert(device_id, dev);
            self.device_paths
                .insert(path_string(nodes).into_boxed_str(), dev);
        }
        for s in series {
            let extra = (s.alias.is_some()
                || !s.tags.is_empty()
                || !s.attributes.is_empty()
                || s.max_point_number.is_some())
            .then(|| {
                Box::new(SeriesExtra {
                    alias: s.alias.clone(),
                    tags: s.tags.clone(),
                    attributes: s.attributes.clone(),
                    max_point_number: s.max_point_number,
                })
            });
            let idx = self.alloc(
                Arc::from(s.name.as_str()),
                dev,
                NodeKind::Series(SeriesNode {
                    id: SeriesId(s.id),
                    data_type: s.data_type,
                    encoding: s.encoding,
                    compression: s.compression,
                    extra,
                }),
            );
            self.series.insert(SeriesId(s.id), idx);
            if let Some(state) = self.inner_mut(dev).and_then(|i| i.device.as_mut()) {
                state.series_count += 1;
                if let Some(alias) = &s.alias {
                    state.aliases.insert(alias.as_str().into(), idx);
                }
            }
        }
    }

    fn apply_delete_series(&mut self, ids: &[u64]) {
        let mut touched = Vec::new();
        for id in ids {
            let Some(idx) = self.series.remove(&SeriesId(*id)) else {
                continue;
            };
            let node = self.node(idx);
            let parent = node.parent;
            let alias = match &node.kind {
                NodeKind::Series(s) => s.extra.as_ref().and_then(|e| e.alias.clone()),
                NodeKind::Inner(_) => None,
            };
            self.release(idx);
            if let Some(state) = self.inner_mut(parent).and_then(|i| i.device.as_mut()) {
                state.series_count = state.series_count.saturating_sub(1);
                if let Some(alias) = alias {
                    state.aliases.remove(alias.as_str());
                }
            }
            touched.push(parent);
        }
        touched.sort_unstable();
        touched.dedup();
        for dev in touched {
            if self.nodes[dev as usize].is_none() {
                continue;
            }
            let empty = self
                .inner(dev)
                .and_then(|i| i.device.as_ref())
                .is_some_and(|d| d.series_count == 0);
            if empty {
                self.clear_device(dev);
            }
            self.prune_upwards(dev);
        }
    }

    /// Remove the device state of `idx` and its index entries.
    fn clear_device(&mut self, idx: NodeIdx) {
        let text = self.path(idx).to_string();
        if let Some(state) = self.inner_mut(idx).and_then(|i| i.device.take()) {
            self.devices.remove(&state.id);
            self.device_paths.remove(text.as_str());
        }
    }

    /// Remove the subtree at `idx` (a database) and prune empty ancestors.
    fn remove_subtree(&mut self, idx: NodeIdx) {
        let parent = self.node(idx).parent;
        let mut stack = vec![idx];
        let mut order = Vec::new();
        while let Some(i) = stack.pop() {
            order.push(i);
            if let Some(inner) = self.inner(i) {
                stack.extend(inner.children.values().copied());
            }
        }
        for &i in &order {
            match &self.node(i).kind {
                NodeKind::Series(s) => {
                    let id = s.id;
                    self.series.remove(&id);
                }
                NodeKind::Inner(inner) => {
                    let (database, is_device) = (inner.database, inner.device.is_some());
                    if let Some(db) = database {
                        self.databases.remove(&db);
                    }
                    if is_device {
                        self.clear_device(i);
                    }
                }
            }
        }
        // Children before parents, so each release unlinks from a live parent.
        for &i in order.iter().rev() {
            self.release(i);
        }
        self.prune_upwards(parent);
    }

    // ---- snapshot -----------------------------------------------------

    /// The records that rebuild this tree: databases, then each device
    /// with its series (split into bounded records).
    pub(crate) fn snapshot_records(&self, emit: &mut dyn FnMut(&Record)) {
        let mut dbs: Vec<_> = self.databases.iter().collect();
        dbs.sort_unstable_by_key(|(id, _)| **id);
        for (id, &idx) in dbs {
            emit(&Record::CreateDatabase {
                id: id.0,
                path: self.path_nodes(idx),
            });
            if let Some(&ms) = self.ttls.get(id) {
                emit(&Record::SetTtl {
                    id: id.0,
                    ttl_ms: Some(ms),
                });
            }
        }
        let mut devices: Vec<_> = self.devices.iter().collect();
        devices.sort_unstable_by_key(|(id, _)| **id);
        for (id, &idx) in devices {
            let Some(inner) = self.inner(idx) else {
                continue;
            };
            let Some(state) = &inner.device else {
                continue;
            };
            let device = self.path_nodes(idx);
            let mut batch = Vec::new();
            for (name, &c) in &inner.children {
                let NodeKind::Series(s) = &self.node(c).kind else {
                    continue;
                };
                let (alias, tags, attributes, max_point_number) = match &s.extra {
                    Some(e) => (
                        e.alias.clone(),
                        e.tags.clone(),
                        e.attributes.clone(),
                        e.max_point_number,
                    ),
                    None => (None, BTreeMap::new(), BTreeMap::new(), None),
                };
                batch.push(NewSeries {
                    id: s.id.0,
                    name: name.to_string(),
                    data_type: s.data_type,
                    encoding: s.encoding,
                    compression: s.compression,
                    alias,
                    tags,
                    attributes,
                    max_point_number,
                });
                if batch.len() == SNAPSHOT_SERIES_PER_RECORD {
                    emit(&Record::CreateSeries {
                        device_id: id.0,
                        device: device.clone(),
                        aligned: state.aligned,
                        series: std::mem::take(&mut batch),
                    });
                }
            }
            if !batch.is_empty() {
                emit(&Record::CreateSeries {
                    device_id: id.0,
                    device,
                    aligned: state.aligned,
                    series: batch,
                });
            }
        }
    }
}

/// Type, encoding and compression rules for a new series.
pub(crate) fn check_series_type(
    path: &dyn std::fmt::Display,
    data_type: DataType,
    encoding: Encoding,
    compression: Compression,
) -> Result<()> {
    if data_type == DataType::Vector {
        return Err(Error::UnsupportedDataType {
            path: path.to_string(),
            data_type,
        });
    }
    if !data_type.writable_encodings().contains(&encoding) {
        return Err(Error::EncodingNotSupported {
            path: path.to_string(),
            data_type,
            encoding,
        });
    }
    if !Compression::WRITABLE.contains(&compression) {
        return Err(Error::CompressionNotSupported {
            path: path.to_string(),
            compression,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_slot_stays_small() {
        // The per-series memory budget in the module docs depends on this.
        assert!(std::mem::size_of::<Option<Node>>() <= 48);
    }

    #[test]
    fn literal_patterns_do_not_scan_siblings() {
        let mut tree = Tree::new();
        let mut records = vec![Record::CreateDatabase {
            id: 1,
            path: vec!["root".into(), "db".into()],
        }];
        for d in 0..100u64 {
            records.push(Record::CreateSeries {
                device_id: d + 1,
                device: vec!["root".into(), "db".into(), format!("d{d}")],
                aligned: false,
                series: (0..10u64)
                    .map(|s| NewSeries {
                        id: d * 10 + s + 1,
                        name: format!("s{s}"),
                        data_type: DataType::Int64,
                        encoding: Encoding::Ts2Diff,
                        compression: Compression::Lz4,
                        alias: None,
                        tags: BTreeMap::new(),
                        attributes: BTreeMap::new(),
                        max_point_number: None,
                    })
                    .collect(),
            });
        }
        for r in &records {
            tree.validate(std::slice::from_ref(r)).unwrap();
            tree.apply(r);
        }
        let entered = |tree: &Tree, text: &str| {
            let pattern = PathPattern::parse(text).unwrap();
            tree.walked.store(0, std::sync::atomic::Ordering::Relaxed);
            let mut matched = 0;
            tree.walk(&pattern, WalkOptions::default(), &mut |_, _| {
                matched += 1;
                Flow::Continue
            });
            (
                matched,
                tree.walked.load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        // Literal nodes are hash lookups: root, db, d42, s3.
        assert_eq!(entered(&tree, "root.db.d42.s3"), (1, 4));
        // A wildcard level scans that level only: root, db, 100 devices,
        // then one lookup per device, not 1000 measurements.
        assert_eq!(entered(&tree, "root.db.*.s3"), (100, 202));
        // `**` has to look everywhere.
        assert_eq!(entered(&tree, "root.**.s3"), (100, 1102));
    }
}
