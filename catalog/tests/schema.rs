//! Behaviour of the catalog's public API in memory: databases, creation
//! (explicit and automatic), type checks, listings, counts, child paths,
//! drops and deletes.

// Helpers outside #[test] fns unwrap too: in tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use catalog::{
    Catalog, CatalogConfig, Compression, DataType, Encoding, Error, NodeType, Page, Path,
    PathPattern, SeriesSpec, ValueKind,
};

fn p(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn pat(s: &str) -> PathPattern {
    PathPattern::parse(s).unwrap()
}

fn mem() -> Catalog {
    Catalog::in_memory(CatalogConfig::default()).unwrap()
}

fn names(series: &[catalog::SeriesInfo]) -> Vec<String> {
    series.iter().map(|s| s.path.to_string()).collect()
}

/// The IoTDB quick-start tree: root.ln.wf01.wt01.{status,temperature},
/// root.ln.wf02.wt02.{status,hardware}, root.sgcc.wf03.wt01.{status,temperature}.
fn sample() -> Catalog {
    let c = mem();
    c.create_database(&p("root.ln")).unwrap();
    c.create_database(&p("root.sgcc")).unwrap();
    c.create_series(
        &p("root.ln.wf01.wt01.status"),
        SeriesSpec::new(DataType::Boolean),
    )
    .unwrap();
    c.create_series(
        &p("root.ln.wf01.wt01.temperature"),
        SeriesSpec::new(DataType::Float).encoding(Encoding::Rle),
    )
    .unwrap();
    c.create_series(
        &p("root.ln.wf02.wt02.status"),
        SeriesSpec::new(DataType::Boolean),
    )
    .unwrap();
    c.create_series(
        &p("root.ln.wf02.wt02.hardware"),
        SeriesSpec::new(DataType::Text),
    )
    .unwrap();
    c.create_series(
        &p("root.sgcc.wf03.wt01.status"),
        SeriesSpec::new(DataType::Boolean),
    )
    .unwrap();
    c.create_series(
        &p("root.sgcc.wf03.wt01.temperature"),
        SeriesSpec::new(DataType::Float),
    )
    .unwrap();
    c
}

#[test]
fn catalog_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
}

#[test]
fn databases_need_two_levels_and_cannot_nest() {
    let c = mem();
    assert!(matches!(
        c.create_database(&p("root")),
        Err(Error::InvalidPath { .. })
    ));
    let id = c.create_database(&p("root.ln")).unwrap();
    assert!(matches!(
        c.create_database(&p("root.ln")),
        Err(Error::DatabaseAlreadyExists { path }) if path == "root.ln"
    ));
    // Below an existing database.
    let err = c.create_database(&p("root.ln.a")).unwrap_err();
    assert!(
        matches!(&err, Error::DatabaseConflict { path, existing } if path == "root.ln.a" && existing == "root.ln"),
        "{err}"
    );
    // Above an existing database.
    c.create_database(&p("root.x.y")).unwrap();
    let err = c.create_database(&p("root.x")).unwrap_err();
    assert!(
        matches!(&err, Error::DatabaseConflict { path, existing } if path == "root.x" && existing == "root.x.y"),
        "{err}"
    );
    // Siblings under a shared inner node are fine.
    c.create_database(&p("root.x.z")).unwrap();
    let dbs: Vec<_> = c
        .list_databases(&PathPattern::all())
        .into_iter()
        .map(|d| d.path.to_string())
        .collect();
    assert_eq!(dbs, ["root.ln", "root.x.y", "root.x.z"]);
    assert_eq!(c.count_databases(&pat("root.x.*")), 2);
    assert_eq!(c.database(&p("root.ln")).unwrap().id, id);
    assert_eq!(
        c.database_of(&p("root.ln.d1.s1")).unwrap().path.to_string(),
        "root.ln"
    );
    assert!(c.database_of(&p("root.q.d1")).is_none());
    assert!(c.database(&p("root.x")).is_none());
}

#[test]
fn explicit_creation_applies_defaults_and_rules() {
    let c = sample();
    let s = c.series(&p("root.ln.wf01.wt01.status")).unwrap();
    assert_eq!(s.handle.data_type, DataType::Boolean);
    assert_eq!(s.handle.encoding, DataType::Boolean.default_encoding());
    assert_eq!(s.handle.compression, Compression::Lz4);
    assert!(!s.handle.aligned);
    assert_eq!(s.database.to_string(), "root.ln");
    assert_eq!(s.device_path().to_string(), "root.ln.wf01.wt01");
    assert_eq!(s.measurement(), "status");
    let t = c.series(&p("root.ln.wf01.wt01.temperature")).unwrap();
    assert_eq!(t.handle.encoding, Encoding::Rle);
    // Same device, same device id; different series ids.
    assert_eq!(s.handle.device, t.handle.device);
    assert_ne!(s.handle.id, t.handle.id);

    assert!(matches!(
        c.create_series(&p("root.ln.wf01.wt01.status"), SeriesSpec::new(DataType::Int32)),
        Err(Error::SeriesAlreadyExists { path }) if path == "root.ln.wf01.wt01.status"
    ));
    assert!(matches!(
        c.create_series(
            &p("root.ln.wf01.wt01.x"),
            SeriesSpec::new(DataType::Text).encoding(Encoding::Gorilla)
        ),
        Err(Error::EncodingNotSupported { path, .. }) if path == "root.ln.wf01.wt01.x"
    ));
    assert!(matches!(
        c.create_series(&p("root.ln.wf01.wt01.x"), SeriesSpec::new(DataType::Vector)),
        Err(Error::UnsupportedDataType { .. })
    ));
    assert!(matches!(
        c.create_series(
            &p("root.ln.wf01.wt01.x"),
            SeriesSpec::new(DataType::Int32).compression(Compression::Lzma2)
        ),
        Err(Error::CompressionNotSupported { .. })
    ));
    // A measurement is a leaf.
    assert!(matches!(
        c.create_series(&p("root.ln.wf01.wt01.status.x"), SeriesSpec::new(DataType::Int32)),
        Err(Error::PathIsMeasurement { path }) if path == "root.ln.wf01.wt01.status"
    ));
    // A device cannot become a measurement.
    assert!(matches!(
        c.create_series(&p("root.ln.wf01.wt01"), SeriesSpec::new(DataType::Int32)),
        Err(Error::PathAlreadyExists { path }) if path == "root.ln.wf01.wt01"
    ));
    // `time` is the relational time column.
    assert!(matches!(
        c.create_series(
            &p("root.ln.wf01.wt01.Time"),
            SeriesSpec::new(DataType::Int32)
        ),
        Err(Error::InvalidPath { .. })
    ));
    // Nothing above was half-created.
    assert_eq!(c.count_series(&PathPattern::all()), 6);
}

#[test]
fn aliases_tags_and_attributes() {
    let c = mem();
    c.create_database(&p("root.sg")).unwrap();
    let h = c
        .create_series(
            &p("root.sg.d1.s1"),
            SeriesSpec::new(DataType::Double)
                .alias("temperature")
                .tag("unit", "celsius")
                .attribute("vendor", "acme"),
        )
        .unwrap();
    let by_alias = c.series(&p("root.sg.d1.temperature")).unwrap();
    assert_eq!(by_alias.path.to_string(), "root.sg.d1.s1");
    assert_eq!(by_alias.alias.as_deref(), Some("temperature"));
    assert_eq!(by_alias.tags["unit"], "celsius");
    assert_eq!(by_alias.attributes["vendor"], "acme");
    assert_eq!(c.lookup_series("root.sg.d1", "temperature"), Some(h));
    // A literal pattern matches the alias too.
    assert_eq!(
        names(&c.list_series(&pat("root.sg.d1.temperature"), Page::all())),
        ["root.sg.d1.s1"]
    );
    assert!(matches!(
        c.create_series(&p("root.sg.d1.s2"), SeriesSpec::new(DataType::Double).alias("temperature")),
        Err(Error::AliasAlreadyExists { alias, .. }) if alias == "temperature"
    ));
    assert!(matches!(
        c.create_series(
            &p("root.sg.d1.temperature"),
            SeriesSpec::new(DataType::Double)
        ),
        Err(Error::SeriesAlreadyExists { .. })
    ));
    assert!(matches!(
        c.create_series(
            &p("root.sg.d1.s2"),
            SeriesSpec::new(DataType::Double).alias("s1")
        ),
        Err(Error::AliasAlreadyExists { .. })
    ));
    // Deleting the series frees the alias.
    c.delete_series(&pat("root.sg.d1.s1")).unwrap();
    c.create_series(
        &p("root.sg.d1.s2"),
        SeriesSpec::new(DataType::Double).alias("temperature"),
    )
    .unwrap();
    let aliased: Vec<_> = c
        .list_series(&PathPattern::all(), Page::all())
        .into_iter()
        .filter(|s| s.alias.as_deref() == Some("temperature"))
        .collect();
    assert_eq!(names(&aliased), ["root.sg.d1.s2"]);
}

#[test]
fn auto_create_on_first_write() {
    let c = mem();
    let handles = c
        .ensure_series(
            "root.ln.wf01.wt01",
            &[
                ("status", c.infer_type(ValueKind::Boolean)),
                ("temperature", c.infer_type(ValueKind::Floating)),
                ("count", c.infer_type(ValueKind::Integer)),
                ("note", c.infer_type(ValueKind::Text)),
            ],
            false,
        )
        .unwrap();
    assert_eq!(handles.len(), 4);
    let types: Vec<_> = handles.iter().map(|h| h.data_type).collect();
    assert_eq!(
        types,
        [
            DataType::Boolean,
            DataType::Double,
            // IoTDB's integer_string_infer_type defaults to DOUBLE.
            DataType::Double,
            DataType::Text
        ]
    );
    assert_eq!(handles[1].encoding, DataType::Double.default_encoding());
    assert!(handles.iter().all(|h| h.compression == Compression::Lz4));
    assert!(handles.iter().all(|h| h.device == handles[0].device));
    // The database was created at level 1.
    let dbs = c.list_databases(&PathPattern::all());
    assert_eq!(dbs.len(), 1);
    assert_eq!(dbs[0].path.to_string(), "root.ln");
    assert!(handles.iter().all(|h| h.database == dbs[0].id));

    // Second write: same handles, in the order asked, new ones appended.
    let again = c
        .ensure_series(
            "root.ln.wf01.wt01",
            &[
                ("temperature", DataType::Double),
                ("status", DataType::Boolean),
            ],
            false,
        )
        .unwrap();
    assert_eq!(again, [handles[1], handles[0]]);
    let more = c
        .ensure_series(
            "root.ln.wf01.wt01",
            &[
                ("status", DataType::Boolean),
                ("speed", DataType::Int64),
                ("speed", DataType::Int64),
            ],
            false,
        )
        .unwrap();
    assert_eq!(more[0], handles[0]);
    assert_eq!(more[1], more[2]);
    assert_eq!(c.count_series(&pat("root.ln.wf01.wt01.*")), 5);
    // A non-canonical device text finds the same device.
    let quoted = c
        .ensure_series(
            "root.`ln`.wf01.`wt01`",
            &[("status", DataType::Boolean)],
            false,
        )
        .unwrap();
    assert_eq!(quoted[0], handles[0]);
    // Quoted node names work end to end.
    let odd = c
        .ensure_series("root.ln.`dev.1`", &[("a b", DataType::Int64)], false)
        .unwrap();
    assert_eq!(
        c.series_by_id(odd[0].id).unwrap().path.to_string(),
        "root.ln.`dev.1`.`a b`"
    );
    assert_eq!(c.lookup_series("root.ln.`dev.1`", "a b"), Some(odd[0]));
}

#[test]
fn auto_create_respects_database_level() {
    let c = Catalog::in_memory(CatalogConfig {
        database_level: 2,
        integer_type: DataType::Double,
        ..CatalogConfig::default()
    })
    .unwrap();
    let h = c
        .ensure_series(
            "root.a.b.c",
            &[("s", c.infer_type(ValueKind::Integer))],
            false,
        )
        .unwrap();
    assert_eq!(h[0].data_type, DataType::Double);
    assert_eq!(
        c.database_by_id(h[0].database).unwrap().path.to_string(),
        "root.a.b"
    );
    // The device is above the database level: no database can be made.
    assert!(matches!(
        c.ensure_series("root.x", &[("s", DataType::Int64)], false),
        Err(Error::InvalidPath { .. })
    ));
    // An auto-created database may not nest with an existing one.
    c.create_database(&p("root.q.r.s")).unwrap();
    assert!(matches!(
        c.ensure_series("root.q.r.t", &[("s", DataType::Int64)], false),
        Err(Error::DatabaseConflict { .. })
    ));
}

#[test]
fn auto_create_off_names_the_missing_series() {
    let c = Catalog::in_memory(CatalogConfig {
        auto_create_schema: false,
        ..CatalogConfig::default()
    })
    .unwrap();
    let err = c
        .ensure_series("root.ln.d1", &[("s1", DataType::Int64)], false)
        .unwrap_err();
    assert!(
        matches!(&err, Error::SeriesNotFound { path } if path == "root.ln.d1.s1"),
        "{err}"
    );
    assert!(err.to_string().contains("root.ln.d1.s1"));
    // Explicit creation without a database is refused too.
    assert!(matches!(
        c.create_series(&p("root.ln.d1.s1"), SeriesSpec::new(DataType::Int64)),
        Err(Error::DatabaseNotSet { path }) if path == "root.ln.d1"
    ));
    c.create_database(&p("root.ln")).unwrap();
    let h = c
        .create_series(&p("root.ln.d1.s1"), SeriesSpec::new(DataType::Int64))
        .unwrap();
    assert_eq!(
        c.ensure_series("root.ln.d1", &[("s1", DataType::Int64)], false)
            .unwrap(),
        [h]
    );
    assert!(matches!(
        c.ensure_series("root.ln.d1", &[("s1", DataType::Int64), ("s2", DataType::Int64)], false),
        Err(Error::SeriesNotFound { path }) if path == "root.ln.d1.s2"
    ));
    assert_eq!(c.count_series(&PathPattern::all()), 1);
}

#[test]
fn type_mismatch_names_path_and_types() {
    let c = mem();
    let h = c
        .ensure_series("root.ln.d1", &[("s1", DataType::Int64)], false)
        .unwrap()[0];
    c.check_type(&h, DataType::Int64).unwrap();
    // An existing series keeps its type whatever the writer inferred.
    let again = c
        .ensure_series("root.ln.d1", &[("s1", DataType::Text)], false)
        .unwrap()[0];
    assert_eq!(again.data_type, DataType::Int64);
    let err = c.check_type(&again, DataType::Text).unwrap_err();
    assert!(
        matches!(&err, Error::TypeMismatch { path, expected: DataType::Int64, got: DataType::Text } if path == "root.ln.d1.s1"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("root.ln.d1.s1") && msg.contains("INT64") && msg.contains("TEXT"));
}

#[test]
fn aligned_devices() {
    let c = mem();
    c.create_database(&p("root.sg")).unwrap();
    let hs = c
        .create_aligned_series(
            &p("root.sg.d1"),
            vec![
                ("lat".into(), SeriesSpec::new(DataType::Float)),
                ("lon".into(), SeriesSpec::new(DataType::Float)),
            ],
        )
        .unwrap();
    assert!(hs.iter().all(|h| h.aligned));
    assert!(c.device(&p("root.sg.d1")).unwrap().aligned);
    assert!(matches!(
        c.create_series(&p("root.sg.d1.x"), SeriesSpec::new(DataType::Float)),
        Err(Error::AlignmentMismatch { device, aligned: true }) if device == "root.sg.d1"
    ));
    assert!(matches!(
        c.ensure_series("root.sg.d1", &[("lat", DataType::Float)], false),
        Err(Error::AlignmentMismatch { .. })
    ));
    let more = c
        .ensure_series(
            "root.sg.d1",
            &[("lat", DataType::Float), ("alt", DataType::Double)],
            true,
        )
        .unwrap();
    assert_eq!(more[0], hs[0]);
    assert!(more[1].aligned);
    c.ensure_series("root.sg.d2", &[("s", DataType::Float)], false)
        .unwrap();
    assert!(matches!(
        c.ensure_series("root.sg.d2", &[("t", DataType::Float)], true),
        Err(Error::AlignmentMismatch { aligned: false, .. })
    ));
}

#[test]
fn listings_follow_patterns_in_path_order() {
    let c = sample();
    assert_eq!(
        names(&c.list_series(&pat("root.ln.**"), Page::all())),
        [
            "root.ln.wf01.wt01.status",
            "root.ln.wf01.wt01.temperature",
            "root.ln.wf02.wt02.hardware",
            "root.ln.wf02.wt02.status",
        ]
    );
    assert_eq!(
        names(&c.list_series(&pat("root.*.*.wt01.status"), Page::all())),
        ["root.ln.wf01.wt01.status", "root.sgcc.wf03.wt01.status"]
    );
    assert_eq!(
        names(&c.list_series(&pat("root.**.temp*"), Page::all())),
        [
            "root.ln.wf01.wt01.temperature",
            "root.sgcc.wf03.wt01.temperature"
        ]
    );
    assert_eq!(
        names(&c.list_series(&pat("root.ln.wf0*.*.s*"), Page::all())),
        ["root.ln.wf01.wt01.status", "root.ln.wf02.wt02.status"]
    );
    // Exact patterns: a device path is not a series.
    assert!(c
        .list_series(&pat("root.ln.wf01.wt01"), Page::all())
        .is_empty());
    // LIMIT / OFFSET.
    assert_eq!(
        names(&c.list_series(&PathPattern::all(), Page::new(Some(2), 3))),
        ["root.ln.wf02.wt02.status", "root.sgcc.wf03.wt01.status"]
    );
    assert!(c
        .list_series(&PathPattern::all(), Page::new(Some(5), 10))
        .is_empty());
    assert_eq!(c.count_series(&PathPattern::all()), 6);
    assert_eq!(c.count_series(&pat("root.**.status")), 3);

    let devices: Vec<_> = c
        .list_devices(&PathPattern::all(), Page::all())
        .into_iter()
        .map(|d| (d.path.to_string(), d.database.to_string(), d.series_count))
        .collect();
    assert_eq!(
        devices,
        [
            ("root.ln.wf01.wt01".to_string(), "root.ln".to_string(), 2),
            ("root.ln.wf02.wt02".to_string(), "root.ln".to_string(), 2),
            (
                "root.sgcc.wf03.wt01".to_string(),
                "root.sgcc".to_string(),
                2
            ),
        ]
    );
    assert_eq!(c.count_devices(&pat("root.*.*.wt01")), 2);
    assert_eq!(
        c.list_devices(&PathPattern::all(), Page::new(Some(1), 1))[0]
            .path
            .to_string(),
        "root.ln.wf02.wt02"
    );
    assert_eq!(
        names(&c.device_series(&p("root.ln.wf02.wt02"))),
        ["root.ln.wf02.wt02.hardware", "root.ln.wf02.wt02.status"]
    );
    let dev = c.device(&p("root.ln.wf01.wt01")).unwrap();
    assert_eq!(c.device_by_id(dev.id).unwrap().path, dev.path);
}

#[test]
fn count_by_level() {
    let c = sample();
    let rows: Vec<_> = c
        .count_series_by_level(&PathPattern::all(), 1)
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    assert_eq!(
        rows,
        [("root.ln".to_string(), 4), ("root.sgcc".to_string(), 2)]
    );
    let rows: Vec<_> = c
        .count_series_by_level(&pat("root.**.status"), 2)
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    assert_eq!(
        rows,
        [
            ("root.ln.wf01".to_string(), 1),
            ("root.ln.wf02".to_string(), 1),
            ("root.sgcc.wf03".to_string(), 1),
        ]
    );
    let rows = c.count_series_by_level(&PathPattern::all(), 0);
    assert_eq!(rows, [(Path::root(), 6)]);
    // A level deeper than every series counts nothing.
    assert!(c.count_series_by_level(&PathPattern::all(), 5).is_empty());
    // Level equal to the series depth groups by the series itself.
    assert_eq!(c.count_series_by_level(&pat("root.ln.wf01.**"), 4).len(), 2);
}

/// The pattern of the children of the nodes `parent` matches.
fn children(parent: &str) -> PathPattern {
    pat(&format!("{parent}.*"))
}

/// SHOW CHILD NODES: the distinct names of the nodes `pattern` matches.
fn child_names(c: &Catalog, pattern: &PathPattern) -> Vec<String> {
    let names: std::collections::BTreeSet<String> = c
        .list_nodes(pattern, Page::all())
        .into_iter()
        .map(|n| n.path.last().to_string())
        .collect();
    names.into_iter().collect()
}

#[test]
fn child_paths_and_nodes() {
    let c = sample();
    c.create_database(&p("root.a.b")).unwrap();
    let rows: Vec<_> = c
        .list_nodes(&children("root"), Page::all())
        .into_iter()
        .map(|r| (r.path.to_string(), r.node_type))
        .collect();
    assert_eq!(
        rows,
        [
            ("root.a".to_string(), NodeType::DatabaseInternal),
            ("root.ln".to_string(), NodeType::Database),
            ("root.sgcc".to_string(), NodeType::Database),
        ]
    );
    assert_eq!(NodeType::DatabaseInternal.to_string(), "SG INTERNAL");
    let rows: Vec<_> = c
        .list_nodes(&children("root.ln.*"), Page::all())
        .into_iter()
        .map(|r| (r.path.to_string(), r.node_type.to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            ("root.ln.wf01.wt01".to_string(), "DEVICE".to_string()),
            ("root.ln.wf02.wt02".to_string(), "DEVICE".to_string()),
        ]
    );
    let rows: Vec<_> = c
        .list_nodes(&children("root.ln.wf01.wt01"), Page::all())
        .into_iter()
        .map(|r| (r.path.to_string(), r.node_type))
        .collect();
    assert_eq!(
        rows,
        [
            ("root.ln.wf01.wt01.status".to_string(), NodeType::Timeseries),
            (
                "root.ln.wf01.wt01.temperature".to_string(),
                NodeType::Timeseries
            ),
        ]
    );
    assert_eq!(
        c.list_nodes(&children("root.ln"), Page::all())[0].node_type,
        NodeType::Internal
    );
    assert_eq!(child_names(&c, &children("root")), ["a", "ln", "sgcc"]);
    // Distinct names across every matched node.
    assert_eq!(
        child_names(&c, &children("root.*.*.*")),
        ["hardware", "status", "temperature"]
    );
    assert!(child_names(&c, &children("root.nope")).is_empty());
    // A device may also have child devices; device queries still find them.
    c.ensure_series("root.ln.wf01.wt01.sub", &[("s", DataType::Int64)], false)
        .unwrap();
    let rows: Vec<_> = c
        .list_nodes(&children("root.ln.wf01.*"), Page::all())
        .into_iter()
        .map(|r| (r.path.to_string(), r.node_type))
        .collect();
    assert_eq!(
        rows,
        [
            ("root.ln.wf01.wt01.status".to_string(), NodeType::Timeseries),
            ("root.ln.wf01.wt01.sub".to_string(), NodeType::Device),
            (
                "root.ln.wf01.wt01.temperature".to_string(),
                NodeType::Timeseries
            ),
        ]
    );
    assert_eq!(c.count_devices(&pat("root.ln.**")), 3);
    assert_eq!(
        c.list_devices(&pat("root.ln.wf01.**"), Page::all())
            .into_iter()
            .map(|d| d.path.to_string())
            .collect::<Vec<_>>(),
        ["root.ln.wf01.wt01", "root.ln.wf01.wt01.sub"]
    );
}

#[test]
fn drop_database_returns_what_it_held() {
    let c = sample();
    c.create_database(&p("root.x.y")).unwrap();
    let before = c.list_series(&pat("root.ln.**"), Page::all());
    let dropped = c.drop_database(&p("root.ln")).unwrap();
    assert_eq!(dropped.path.to_string(), "root.ln");
    let mut ids: Vec<_> = before.iter().map(|s| s.handle.id).collect();
    ids.sort();
    assert_eq!(dropped.series, ids);
    assert_eq!(dropped.devices.len(), 2);
    assert_eq!(c.count_series(&PathPattern::all()), 2);
    assert!(c.device(&p("root.ln.wf01.wt01")).is_none());
    assert!(c.lookup_series("root.ln.wf01.wt01", "status").is_none());
    assert!(matches!(
        c.drop_database(&p("root.ln")),
        Err(Error::DatabaseNotFound { path }) if path == "root.ln"
    ));
    // The emptied inner node above root.x.y goes with it; root.x is then free.
    c.drop_database(&p("root.x.y")).unwrap();
    assert!(child_names(&c, &children("root")).iter().all(|n| n != "x"));
    c.create_database(&p("root.x")).unwrap();
    // Recreated series get new ids.
    let h = c
        .ensure_series("root.ln.wf01.wt01", &[("status", DataType::Boolean)], false)
        .unwrap()[0];
    assert!(!ids.contains(&h.id));
    assert!(h.id > *ids.iter().max().unwrap());
    // By pattern.
    let dropped = c.drop_databases(&pat("root.*")).unwrap();
    let paths: Vec<_> = dropped.iter().map(|d| d.path.to_string()).collect();
    assert_eq!(paths, ["root.ln", "root.sgcc", "root.x"]);
    assert_eq!(c.count_databases(&PathPattern::all()), 0);
    assert!(matches!(
        c.drop_databases(&pat("root.*")),
        Err(Error::DatabaseNotFound { .. })
    ));
}

#[test]
fn delete_series_by_pattern() {
    let c = sample();
    let status = c.series(&p("root.ln.wf02.wt02.status")).unwrap();
    let deleted = c.delete_series(&pat("root.ln.**.status")).unwrap();
    let paths: Vec<_> = deleted.iter().map(|d| d.path.to_string()).collect();
    assert_eq!(
        paths,
        ["root.ln.wf01.wt01.status", "root.ln.wf02.wt02.status"]
    );
    assert_eq!(deleted[1].id, status.handle.id);
    assert_eq!(deleted[1].device, status.handle.device);
    assert_eq!(deleted[1].database, status.handle.database);
    assert_eq!(c.count_series(&PathPattern::all()), 4);
    assert!(c.series_by_id(status.handle.id).is_none());
    // Emptying a device removes it (and inner nodes left empty); the
    // database stays.
    c.delete_series(&pat("root.ln.wf02.**")).unwrap();
    assert!(c.device(&p("root.ln.wf02.wt02")).is_none());
    assert_eq!(child_names(&c, &children("root.ln")), ["wf01"]);
    c.delete_series(&pat("root.ln.**")).unwrap();
    assert!(c.database(&p("root.ln")).is_some());
    assert!(child_names(&c, &children("root.ln")).is_empty());
    assert!(matches!(
        c.delete_series(&pat("root.ln.**")),
        Err(Error::SeriesNotFound { path }) if path == "root.ln.**"
    ));
}

#[test]
fn concurrent_writers_agree() {
    let c = std::sync::Arc::new(mem());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for d in 0..50 {
                    let device = format!("root.sg.d{d}");
                    let ms = [("a", DataType::Int64), ("b", DataType::Double)];
                    let hs = c.ensure_series(&device, &ms, false).unwrap();
                    out.push((device, hs, t));
                }
                out
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(c.count_series(&PathPattern::all()), 100);
    for (device, hs, _) in &results {
        assert_eq!(c.lookup_series(device, "a"), Some(hs[0]));
        assert_eq!(c.lookup_series(device, "b"), Some(hs[1]));
    }
}
