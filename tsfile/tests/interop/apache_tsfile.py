#!/usr/bin/env python3
"""Apache TsFile interop helper for Arbor's `tsfile` crate tests.

Uses the official PyPI package `tsfile==2.5.0` (Apache TsFile Python binding over
the C++ core) as the reference implementation.

    apache_tsfile.py read FILE          every point of FILE as CSV on stdout
    apache_tsfile.py write SPEC.json OUT  write OUT from a JSON spec

CSV (exact, deterministic):
    header  device,measurement,data_type,time,value
    rows    sorted by (device, measurement, time); null values omitted
    values  BOOLEAN true/false; INT32/INT64/TIMESTAMP decimal integer;
            DOUBLE Python repr(float); FLOAT shortest decimal that round-trips
            as a 32-bit float, laid out like Python repr; NaN, inf, -inf;
            TEXT/STRING raw text; BLOB \\x + lowercase hex; DATE YYYY-MM-DD
    quoting RFC 4180 minimal, "\\n" line terminator: a field is quoted iff it
            contains , " \\r or \\n; inner quotes are doubled (this equals
            Python csv QUOTE_MINIMAL except that a lone \\r is quoted too).
    device  tree model: the dotted device path (root.sg.d1); table model:
            table name and tag values joined by "." (null tag -> "null",
            trailing null tags dropped).

Spec for `write`:
    {"config": {...optional set_tsfile_config overrides, e.g.
                "page_writer_max_point_num_": 1000...},
     "devices": [{"device": "root.sg.d1", "aligned": false,
                  "series": [{"measurement": "s1", "data_type": "INT32",
                              "encoding": "TS_2DIFF", "compression": "LZ4",
                              "points": [[t, v], ...]}]}]}
    Values: JSON numbers/booleans/strings; BLOB {"hex": "..."}; DATE
    "YYYY-MM-DD"; FLOAT/DOUBLE may be "NaN", "inf", "-inf"; null = no point.
    encoding/compression may be omitted (Apache defaults: TS_2DIFF for
    INT32/INT64/TIMESTAMP/DATE, GORILLA for FLOAT/DOUBLE, PLAIN otherwise; LZ4).

Limitations of the Apache 2.5.0 Python API (see README.md next to this file):
  * It cannot register aligned *tree* devices.  "aligned": true devices are
    written through the table-model writer instead: table = the tree path's
    segment 0 (root.sg for root.sg.d1), one STRING TAG column per remaining
    segment.  The chunk groups are aligned (time chunk + value chunks) and the
    device ID is identical to the tree device's, but the file also carries a
    table schema, measurement names must be lower case, and encoding is chosen
    per data type (one encoding per type for all aligned series of a file) and
    compression per file (one compression for all aligned series).
  * Reading TEXT/STRING/BLOB values of tree-model files goes through a C string
    API that truncates at the first NUL byte.  Table-model files are read
    through Arrow batches, which keep NUL bytes.
"""

import datetime
import json
import math
import os
import struct
import sys

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

CSV_HEADER = ["device", "measurement", "data_type", "time", "value"]

DEFAULT_ENCODING = {
    "BOOLEAN": "PLAIN",
    "INT32": "TS_2DIFF",
    "INT64": "TS_2DIFF",
    "TIMESTAMP": "TS_2DIFF",
    "DATE": "TS_2DIFF",
    "FLOAT": "GORILLA",
    "DOUBLE": "GORILLA",
    "TEXT": "PLAIN",
    "STRING": "PLAIN",
    "BLOB": "PLAIN",
}
DEFAULT_COMPRESSION = "LZ4"

# Which set_tsfile_config key selects the encoding of a data type in the
# table-model (aligned) writer.  Determined experimentally with 2.5.0.
TYPE_ENCODING_CONFIG_KEY = {
    "BOOLEAN": "boolean_encoding_type_",
    "INT32": "int32_encoding_type_",
    "DATE": "int32_encoding_type_",
    "INT64": "int64_encoding_type_",
    "TIMESTAMP": "int64_encoding_type_",
    "FLOAT": "float_encoding_type_",
    "DOUBLE": "double_encoding_type_",
    "TEXT": "string_encoding_type_",
    "STRING": "string_encoding_type_",
    "BLOB": "string_encoding_type_",
}

# Rows per Tablet handed to the writer (bounds Python-side memory per call).
TABLET_ROWS_MAX = 8192


class SpecError(Exception):
    """The JSON spec is malformed or asks for something the API cannot do."""


# --------------------------------------------------------------------------
# Value formatting
# --------------------------------------------------------------------------


def _repr_layout(negative, digits, decpt):
    """Lay out a shortest digit string like CPython's float repr.

    The value is 0.<digits> * 10**decpt.  CPython switches to exponent form
    when decpt <= -4 or decpt > 16 (Python/pystrtod.c, format code 'r').
    """
    sign = "-" if negative else ""
    if decpt <= -4 or decpt > 16:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%+03d" % (sign, mant, decpt - 1)
    if decpt <= 0:
        return "%s0.%s%s" % (sign, "0" * -decpt, digits)
    if decpt >= len(digits):
        return "%s%s%s.0" % (sign, digits, "0" * (decpt - len(digits)))
    return "%s%s.%s" % (sign, digits[:decpt], digits[decpt:])


def _special_float(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def format_double(x):
    x = float(x)
    return _special_float(x) or repr(x)


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def format_float32(x):
    """Shortest decimal that reads back as the same 32-bit float, repr layout."""
    x = float(x)
    special = _special_float(x)
    if special:
        return special
    x = _f32(x)  # no-op for values read from a FLOAT column
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    import numpy as np

    # Dragon4 in "unique" mode: the shortest digits that identify the float32,
    # correctly rounded (the same digits Rust's `{}` prints for f32).
    sci = np.format_float_scientific(np.float32(x), unique=True, trim="-")
    mant, exp = sci.split("e")
    negative = mant.startswith("-")
    digits = mant.lstrip("-").replace(".", "").rstrip("0") or "0"
    out = _repr_layout(negative, digits, int(exp) + 1)
    if _f32(float(out)) != x:  # invariant: must round-trip
        raise AssertionError("float32 formatting lost precision: %r -> %s" % (x, out))
    return out


def format_value(data_type, v):
    if data_type == "BOOLEAN":
        return "true" if v else "false"
    if data_type in ("INT32", "INT64", "TIMESTAMP"):
        return str(int(v))
    if data_type == "FLOAT":
        return format_float32(v)
    if data_type == "DOUBLE":
        return format_double(v)
    if data_type in ("TEXT", "STRING"):
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        return v
    if data_type == "BLOB":
        if isinstance(v, str):  # defensive: the binding should return bytes
            v = v.encode("utf-8", "surrogateescape")
        return "\\x" + bytes(v).hex()
    if data_type == "DATE":
        if isinstance(v, int):  # YYYYMMDD as stored on disk
            return "%04d-%02d-%02d" % (v // 10000, v // 100 % 100, v % 100)
        return v.isoformat()
    raise ValueError("unsupported data type %s" % data_type)


# --------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------


def _device_string(segments):
    segs = list(segments)
    while segs and segs[-1] is None:
        segs.pop()
    return ".".join("null" if s is None else str(s) for s in segs)


def _tree_query_path(segments):
    """The dotted path query_timeseries() needs to find this device: the
    binding re-splits it with the tree rule, so it must map back exactly."""
    path = ".".join("null" if s is None else s for s in segments)
    if None in segments or tree_segments(path) != list(segments):
        raise RuntimeError("device %r cannot be addressed by a tree path" % (segments,))
    return path


def _read_tree_device(reader, path, series, out):
    """series: list of (measurement, data_type_name)."""
    names = [m for m, _ in series]
    rs = reader.query_timeseries(path, names, INT64_MIN, INT64_MAX)
    try:
        while rs.next():
            t = int(rs.get_value_by_index(1))
            for i, (m, dt) in enumerate(series):
                idx = i + 2
                if rs.is_null_by_index(idx):
                    continue
                out.append((path, m, dt, t, rs.get_value_by_index(idx)))
    finally:
        rs.close()


def _read_table(reader, table_name, schema, wanted_devices, out):
    import pyarrow as pa
    from tsfile import ColumnCategory

    tags, fields = [], []
    for col in schema.get_columns():
        cat = col.get_category()
        if cat == ColumnCategory.TAG:
            tags.append(col.get_column_name())
        elif cat == ColumnCategory.FIELD:
            fields.append((col.get_column_name(), col.get_data_type().name))
    if not fields:
        return
    columns = tags + [f for f, _ in fields]
    rs = reader.query_table(table_name, columns, INT64_MIN, INT64_MAX, batch_size=4096)
    try:
        while True:
            batch = rs.read_arrow_batch()
            if batch is None:
                break
            if batch.num_rows == 0:
                continue
            # Column 0 is always the time column, whatever its name.
            times = batch.column(0).cast(pa.int64()).to_pylist()
            tag_values = [batch.column(1 + i).to_pylist() for i in range(len(tags))]
            devices = [
                _device_string([table_name] + [tv[r] for tv in tag_values])
                for r in range(batch.num_rows)
            ]
            for j, (fname, dt) in enumerate(fields):
                col = batch.column(1 + len(tags) + j)
                if dt == "TIMESTAMP":
                    col = col.cast(pa.int64())
                values = col.to_pylist()
                for r, v in enumerate(values):
                    if v is None:
                        continue
                    dev = devices[r]
                    if wanted_devices is not None and dev not in wanted_devices:
                        continue
                    out.append((dev, fname, dt, times[r], v))
    finally:
        rs.close()


def read_points(path):
    """All points of the file as (device, measurement, data_type, time, value)."""
    from tsfile import TsFileReader

    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    reader = TsFileReader(path)
    out = []
    try:
        tables = reader.get_all_table_schemas() or {}
        table_devices = {}  # table name -> {device string: (segments, series)}
        for segments, group in sorted(
            reader.get_timeseries_metadata(None).items(),
            key=lambda kv: [("" if s is None else s) for s in kv[0]],
        ):
            series = [
                (ts.measurement_name, ts.data_type.name)
                for ts in group.timeseries
                if ts.measurement_name != ""  # aligned time column
            ]
            if not series:
                continue
            aligned = any(ts.layout for ts in group.timeseries)
            if group.table_name in tables and aligned:
                table_devices.setdefault(group.table_name, {})[_device_string(segments)] = (
                    segments, series)
            else:
                _read_tree_device(reader, _tree_query_path(segments), series, out)
        for table_name in sorted(table_devices):
            devices = table_devices[table_name]
            part = []
            try:
                _read_table(reader, table_name, tables[table_name], set(devices), part)
            except Exception:  # noqa: BLE001
                # The table query refuses tables that also hold non-aligned
                # (tree) devices, e.g. files from `write` mixing aligned and
                # non-aligned devices under one prefix; the tree query reads them.
                part = []
                for segments, series in devices.values():
                    _read_tree_device(reader, _tree_query_path(segments), series, part)
            out.extend(part)
    finally:
        reader.close()
    out.sort(key=lambda p: (p[0], p[1], p[3]))
    return out


def csv_field(s):
    """RFC 4180 minimal quoting: quote iff the field contains , " CR or LF.

    Same as Python's csv.QUOTE_MINIMAL except that a lone CR is quoted too
    (CPython 3.11 only quotes the characters of its line terminator)."""
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def csv_row(fields):
    return ",".join(csv_field(str(f)) for f in fields) + "\n"


def cmd_read(path):
    points = read_points(path)
    parts = [csv_row(CSV_HEADER)]
    for dev, m, dt, t, v in points:
        parts.append(csv_row([dev, m, dt, t, format_value(dt, v)]))
    sys.stdout.buffer.write("".join(parts).encode("utf-8"))
    sys.stdout.buffer.flush()


# --------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------


def tree_segments(path):
    """Tree path -> device ID segments (TSFILE_FORMAT.md section 3)."""
    nodes = path.split(".")
    if len(nodes) == 1:
        return nodes
    if len(nodes) <= 3:
        return [".".join(nodes[:-1]), nodes[-1]]
    return [".".join(nodes[:3])] + nodes[3:]


def convert_value(data_type, v, where):
    """JSON value -> Python value accepted by tsfile.Tablet."""
    if v is None:
        return None
    if data_type == "BOOLEAN":
        if not isinstance(v, bool):
            raise SpecError("%s: BOOLEAN needs true/false, got %r" % (where, v))
        return v
    if data_type in ("INT32", "INT64", "TIMESTAMP"):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError("%s: %s needs an integer, got %r" % (where, data_type, v))
        lo, hi = (-(2**31), 2**31 - 1) if data_type == "INT32" else (INT64_MIN, INT64_MAX)
        if not lo <= v <= hi:
            raise SpecError("%s: %d out of %s range" % (where, v, data_type))
        return v
    if data_type in ("FLOAT", "DOUBLE"):
        if isinstance(v, str):
            special = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
                       "infinity": math.inf, "-infinity": -math.inf}
            if v.lower() not in special:
                raise SpecError("%s: bad float string %r" % (where, v))
            return special[v.lower()]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecError("%s: %s needs a number, got %r" % (where, data_type, v))
        v = float(v)
        if data_type == "FLOAT" and not math.isinf(v) and not math.isnan(v):
            if math.isinf(_f32_checked(v, where)):
                raise SpecError("%s: %r overflows FLOAT" % (where, v))
        return v
    if data_type in ("TEXT", "STRING"):
        if not isinstance(v, str):
            raise SpecError("%s: %s needs a string, got %r" % (where, data_type, v))
        return v
    if data_type == "BLOB":
        if not (isinstance(v, dict) and isinstance(v.get("hex"), str)):
            raise SpecError('%s: BLOB needs {"hex": "..."}, got %r' % (where, v))
        try:
            return bytes.fromhex(v["hex"])
        except ValueError:
            raise SpecError("%s: bad hex %r" % (where, v["hex"])) from None
    if data_type == "DATE":
        try:
            return datetime.date.fromisoformat(v)
        except (TypeError, ValueError):
            raise SpecError("%s: DATE needs YYYY-MM-DD, got %r" % (where, v)) from None
    raise SpecError("%s: unknown data type %r" % (where, data_type))


def _f32_checked(v, where):
    try:
        return _f32(v)
    except OverflowError:
        raise SpecError("%s: %r overflows FLOAT" % (where, v)) from None


class Series:
    def __init__(self, device, raw, idx):
        where = "%s series[%d]" % (device, idx)
        if not isinstance(raw, dict):
            raise SpecError(where + ": must be an object")
        self.measurement = raw.get("measurement")
        if not isinstance(self.measurement, str) or not self.measurement:
            raise SpecError(where + ": missing measurement")
        where = "%s.%s" % (device, self.measurement)
        self.data_type = str(raw.get("data_type", "")).upper()
        if self.data_type not in DEFAULT_ENCODING:
            raise SpecError("%s: unknown data_type %r" % (where, raw.get("data_type")))
        self.encoding = str(raw.get("encoding") or DEFAULT_ENCODING[self.data_type]).upper()
        self.compression = str(raw.get("compression") or DEFAULT_COMPRESSION).upper()
        self.points = {}
        if not isinstance(raw.get("points", []), list):
            raise SpecError(where + ": \"points\" must be a list")
        for p in raw.get("points", []):
            if not (isinstance(p, list) and len(p) == 2):
                raise SpecError("%s: point must be [time, value], got %r" % (where, p))
            t, v = p
            if isinstance(t, bool) or not isinstance(t, int) or not INT64_MIN <= t <= INT64_MAX:
                raise SpecError("%s: bad time %r" % (where, t))
            if t in self.points:
                raise SpecError("%s: duplicate time %d" % (where, t))
            v = convert_value(self.data_type, v, "%s@%d" % (where, t))
            if v is not None:
                self.points[t] = v


class Device:
    def __init__(self, raw, idx):
        if not isinstance(raw, dict) or not isinstance(raw.get("device"), str):
            raise SpecError("devices[%d]: needs a \"device\" string" % idx)
        self.path = raw["device"]
        self.aligned = raw.get("aligned", False)
        if not isinstance(self.aligned, bool):
            raise SpecError("%s: \"aligned\" must be true or false" % self.path)
        if not isinstance(raw.get("series", []), list):
            raise SpecError("%s: \"series\" must be a list" % self.path)
        self.series = [Series(self.path, s, i) for i, s in enumerate(raw.get("series", []))]
        names = [s.measurement for s in self.series]
        if len(set(names)) != len(names):
            raise SpecError("%s: duplicate measurement" % self.path)


def _enum(enum_cls, name, where):
    try:
        return enum_cls[name]
    except KeyError:
        raise SpecError("%s: unknown %s %r" % (where, enum_cls.__name__, name)) from None


def _tablet_blocks(device_series):
    """Yield (times, rows) blocks: rows[i] = list of values (None = null), one
    per series, for the union of the series' timestamps in ascending order."""
    times = sorted(set().union(*[s.points.keys() for s in device_series]))
    for start in range(0, len(times), TABLET_ROWS_MAX):
        block = times[start:start + TABLET_ROWS_MAX]
        yield block, [[s.points.get(t) for s in device_series] for t in block]


def _fill_tablet(tablet, times, rows, col_offset=0):
    for r, t in enumerate(times):
        tablet.add_timestamp(r, t)
        for c, v in enumerate(rows[r]):
            if v is not None:
                tablet.add_value_by_index(col_offset + c, r, v)


def _config_value(key, value):
    from tsfile import Compressor, TSEncoding

    if isinstance(value, str):
        if "encoding" in key:
            return _enum(TSEncoding, value.upper(), "config." + key)
        if "compress" in key:
            return _enum(Compressor, value.upper(), "config." + key)
    return value


def write_file(spec, out_path):
    from tsfile import (
        ColumnCategory,
        ColumnSchema,
        Compressor,
        TableSchema,
        Tablet,
        TimeseriesSchema,
        TSDataType,
        TSEncoding,
        TsFileWriter,
        set_tsfile_config,
    )

    if not isinstance(spec, dict) or not isinstance(spec.get("devices"), list):
        raise SpecError('spec must be an object with a "devices" list')
    devices = [Device(d, i) for i, d in enumerate(spec["devices"])]
    paths = [d.path for d in devices]
    if len(set(paths)) != len(paths):
        raise SpecError("duplicate device in spec")
    for d in devices:
        for s in d.series:
            where = "%s.%s" % (d.path, s.measurement)
            _enum(TSEncoding, s.encoding, where)
            _enum(Compressor, s.compression, where)

    # Aligned devices go through the table-model writer (see module doc).
    tables = {}  # table name -> {"tags": n, "fields": {name: type}, "devices": [...]}
    aligned_encoding = {}  # config key -> encoding name
    aligned_compression = set()
    for d in devices:
        if not d.aligned:
            continue
        segs = tree_segments(d.path)
        table = segs[0]
        if table != table.lower() or any(s.measurement != s.measurement.lower() for s in d.series):
            raise SpecError(
                "%s: aligned devices are written via the table model, which lower-cases "
                "table and measurement names; use lower-case names" % d.path
            )
        t = tables.setdefault(table, {"tags": len(segs) - 1, "fields": {}, "devices": []})
        if t["tags"] != len(segs) - 1:
            raise SpecError(
                "%s: aligned devices under table %r must all have the same depth" % (d.path, table)
            )
        t["devices"].append((d, segs[1:]))
        for s in d.series:
            prev = t["fields"].setdefault(s.measurement, s.data_type)
            if prev != s.data_type:
                raise SpecError(
                    "%s.%s: %s, but %s elsewhere under table %r (one table column per name)"
                    % (d.path, s.measurement, s.data_type, prev, table)
                )
            key = TYPE_ENCODING_CONFIG_KEY[s.data_type]
            prev = aligned_encoding.setdefault(key, s.encoding)
            if prev != s.encoding:
                raise SpecError(
                    "%s.%s: aligned series get one encoding per data type group (%s): "
                    "%s vs %s" % (d.path, s.measurement, key, s.encoding, prev)
                )
            aligned_compression.add(s.compression)
    if len(aligned_compression) > 1:
        raise SpecError(
            "aligned series share one compression per file, got %s" % sorted(aligned_compression)
        )

    if os.path.exists(out_path):
        os.remove(out_path)
    writer = TsFileWriter(out_path)
    closed = False
    try:
        # The config is process-global and reset when the first writer is
        # created, so it is set after TsFileWriter() and before registration.
        config = {}
        for key, enc in aligned_encoding.items():
            config[key] = TSEncoding[enc]
        if aligned_compression:
            comp = Compressor[next(iter(aligned_compression))]
            config["default_compression_type_"] = comp
            config["time_compress_type_"] = comp
        for key, value in (spec.get("config") or {}).items():
            config[key] = _config_value(key, value)
        if config:
            shown = ", ".join("%s=%s" % (k, getattr(v, "name", v)) for k, v in config.items())
            _step("set_tsfile_config(%s)" % shown, set_tsfile_config, config)

        for d in devices:
            if d.aligned:
                continue
            for s in d.series:
                _step(
                    "register_timeseries(%s.%s)" % (d.path, s.measurement),
                    writer.register_timeseries,
                    d.path,
                    TimeseriesSchema(
                        s.measurement,
                        TSDataType[s.data_type],
                        TSEncoding[s.encoding],
                        Compressor[s.compression],
                    ),
                )
        tag_names = {}
        for table, t in tables.items():
            fields = set(t["fields"])
            tags = []
            for i in range(t["tags"]):
                name = "tag%d" % (i + 1)
                while name in fields:
                    name = "_" + name
                tags.append(name)
            tag_names[table] = tags
            cols = [ColumnSchema(n, TSDataType.STRING, ColumnCategory.TAG) for n in tags]
            cols += [ColumnSchema(f, TSDataType[dt]) for f, dt in sorted(t["fields"].items())]
            _step("register_table(%s)" % table, writer.register_table, TableSchema(table, cols))

        for d in devices:
            series = [s for s in d.series if s.points]
            if d.aligned or not series:
                continue
            names = [s.measurement for s in series]
            types = [TSDataType[s.data_type] for s in series]
            for times, rows in _tablet_blocks(series):
                tablet = Tablet(names, types, len(times))
                # Tablet lower-cases column names, and the tree writer silently
                # drops columns that do not match a registered measurement.
                tablet.column_name_list = list(names)
                tablet.set_table_name(d.path)
                _fill_tablet(tablet, times, rows)
                _step("write_tablet(%s %s)" % (d.path, names), writer.write_tablet, tablet)

        for table, t in tables.items():
            tags = tag_names[table]
            for d, tag_values in t["devices"]:
                # An all-null column would still get an empty value chunk.
                series = [s for s in d.series if s.points]
                if not series:
                    continue
                names = tags + [s.measurement for s in series]
                types = [TSDataType.STRING] * len(tags) + [TSDataType[s.data_type] for s in series]
                for times, rows in _tablet_blocks(series):
                    tablet = Tablet(names, types, len(times))
                    tablet.set_table_name(table)
                    for r in range(len(times)):
                        for c, v in enumerate(tag_values):
                            tablet.add_value_by_index(c, r, v)
                    _fill_tablet(tablet, times, rows, col_offset=len(tags))
                    _step("write_table(%s: %s %s)" % (table, d.path, names[len(tags):]),
                          writer.write_table, tablet)
        closed = True  # never close twice, even if close() fails
        _step("close", writer.close)
        verify_written(out_path, devices)
    except BaseException:
        if not closed:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - already failing
                pass
        if os.path.exists(out_path):  # never leave a partial file behind
            os.remove(out_path)
        raise


def _step(what, fn, *args):
    """Call into the binding; name the failing step (its errors are terse)."""
    try:
        return fn(*args)
    except Exception as e:
        raise RuntimeError("%s failed: %s: %s" % (what, type(e).__name__, e)) from e


def verify_written(path, devices):
    """The writer silently drops some data (e.g. unknown columns); check that
    every series landed with the expected number of points."""
    from tsfile import TsFileReader

    expected = {}
    for d in devices:
        for s in d.series:
            if s.points:
                expected[(d.path, s.measurement)] = (s.data_type, len(s.points))
    got = {}
    reader = TsFileReader(path)
    try:
        for segments, group in reader.get_timeseries_metadata(None).items():
            dev = _device_string(segments)
            for ts in group.timeseries:
                if ts.measurement_name == "":
                    continue
                got[(dev, ts.measurement_name)] = (ts.data_type.name, ts.statistic.row_count)
    finally:
        reader.close()
    if got != expected:
        missing = {k: v for k, v in expected.items() if got.get(k) != v}
        extra = {k: v for k, v in got.items() if k not in expected}
        raise RuntimeError(
            "written file does not match spec: expected-but-different %r, unexpected %r"
            % (missing, extra)
        )


def cmd_write(spec_path, out_path):
    with open(spec_path, "r", encoding="utf-8") as f:
        spec = json.load(f)
    write_file(spec, out_path)


# --------------------------------------------------------------------------
# matrix: which (data type, encoding, compression) the 2.5.0 writer accepts
# and its reader reads back identically.  Regenerates apache_support.json.
# --------------------------------------------------------------------------

MATRIX_TYPES = ["BOOLEAN", "INT32", "INT64", "FLOAT", "DOUBLE", "TEXT", "STRING", "BLOB",
                "TIMESTAMP", "DATE"]
MATRIX_ENCODINGS = ["PLAIN", "DICTIONARY", "RLE", "TS_2DIFF", "GORILLA", "ZIGZAG", "CHIMP",
                    "SPRINTZ", "RLBE"]
MATRIX_COMPRESSIONS = ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZ4", "ZSTD", "LZMA2"]
MATRIX_MODES = ["tree_non_aligned", "aligned_via_table"]
MATRIX_PAGE_POINTS = 1000  # typical series spans 3 pages


def matrix_points(data_type, kind):
    """Deterministic test values: 'typical' (2500 smooth/repetitive points,
    multi-page) or 'edge' (extremes, NaN/inf, empty and long strings)."""
    import random

    rnd = random.Random("%s/%s" % (data_type, kind))
    pts = []
    if kind == "typical":
        acc = 0
        for i in range(2500):
            t = 1_000_000 + i * 10 + (i % 3)
            if data_type == "BOOLEAN":
                v = (i // 7) % 3 == 0
            elif data_type == "INT32":
                acc += rnd.randint(-50, 50)
                v = acc
            elif data_type in ("INT64", "TIMESTAMP"):
                acc += rnd.randint(0, 2000)
                v = 1_700_000_000_000 + acc
            elif data_type == "FLOAT":
                acc += rnd.randint(-100, 100)
                v = acc / 4.0  # exactly representable
            elif data_type == "DOUBLE":
                v = round(20.0 + 5 * math.sin(i / 50.0) + rnd.random(), 6)
            elif data_type in ("TEXT", "STRING"):
                v = ["alpha", "beta", "gamma", "ünï", "长"][rnd.randint(0, 4)] + str(i % 4)
            elif data_type == "BLOB":
                v = {"hex": bytes(rnd.randint(1, 255) for _ in range(i % 6)).hex()}
            else:  # DATE
                v = (datetime.date(2020, 1, 1) + datetime.timedelta(days=i)).isoformat()
            pts.append([t, v])
        return pts
    edge = {
        "BOOLEAN": [rnd.random() < 0.5 for _ in range(200)],
        "INT32": [-(2**31), 2**31 - 1, 0, -1, 1, 2**31 - 1, -(2**31)]
        + [rnd.randint(-(2**31), 2**31 - 1) for _ in range(200)],
        "INT64": [INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MAX, INT64_MIN]
        + [rnd.randint(INT64_MIN, INT64_MAX) for _ in range(200)],
        "FLOAT": ["NaN", "inf", "-inf", 3.4028234663852886e38, -3.4028234663852886e38,
                  1.401298464324817e-45, 1.1754943508222875e-38, -0.0, 0.0]
        + [_f32(rnd.uniform(-1e30, 1e30)) for _ in range(100)]
        + [_f32(rnd.uniform(-1, 1)) for _ in range(100)],
        "DOUBLE": ["NaN", "inf", "-inf", 1.7976931348623157e308, -1.7976931348623157e308,
                   5e-324, 2.2250738585072014e-308, -0.0, 0.0]
        + [rnd.uniform(-1e300, 1e300) for _ in range(100)]
        + [struct.unpack("<d", struct.pack("<Q", rnd.getrandbits(63)))[0] for _ in range(100)],
        "TEXT": ["", "a,b", 'q"u"ote', "line\nbreak", "cr\rlf\r\n", "😀 ünï 长", "x" * 5000]
        + ["".join(chr(rnd.randint(32, 0x2FFF)) for _ in range(rnd.randint(0, 40)))
           for _ in range(200)],
        "BLOB": ["", "ff" * 3000, "7f80ff01"]
        + [bytes(rnd.randint(1, 255) for _ in range(rnd.randint(0, 40))).hex()
           for _ in range(200)],
        "DATE": ["1000-01-01", "9999-12-31", "1970-01-01", "2000-02-29", "1969-12-31"]
        + [(datetime.date(1000, 1, 1) + datetime.timedelta(days=rnd.randint(0, 3_240_000)))
           .isoformat() for _ in range(200)],
    }
    edge["STRING"] = edge["TEXT"]
    edge["TIMESTAMP"] = edge["INT64"]
    for i, v in enumerate(edge[data_type]):
        if data_type == "FLOAT" and isinstance(v, float) and not math.isinf(v):
            v = _f32(v)
        if data_type == "BLOB":
            v = {"hex": v}
        pts.append([i * 1000 - 500_000, v])  # negative and positive times
    return pts


def expected_rows(spec):
    rows = []
    for d in spec["devices"]:
        for s in d["series"]:
            dt = s["data_type"]
            for t, v in s["points"]:
                v = convert_value(dt, v, "expected")
                if v is not None:
                    rows.append((d["device"], s["measurement"], dt, t, format_value(dt, v)))
    rows.sort(key=lambda r: (r[0], r[1], r[3]))
    return rows


def matrix_cell(mode, data_type, encoding, compression, tmp_dir):
    """Status of one combination: ok | typical_only | mismatch | write_rejected | read_error."""
    spec = {
        "config": {"page_writer_max_point_num_": MATRIX_PAGE_POINTS},
        "devices": [{
            "device": "root.m.d1",
            "aligned": mode == "aligned_via_table",
            "series": [
                {"measurement": kind, "data_type": data_type, "encoding": encoding,
                 "compression": compression, "points": matrix_points(data_type, kind)}
                for kind in ("typical", "edge")
            ],
        }],
    }
    out = os.path.join(tmp_dir, "%s-%s-%s-%s.tsfile" % (mode, data_type, encoding, compression))
    try:
        write_file(spec, out)
    except Exception as e:  # noqa: BLE001 - the binding's refusal is the result
        return {"status": "write_rejected", "error": str(e)}
    try:
        got = [(d, m, dt, t, format_value(dt, v)) for d, m, dt, t, v in read_points(out)]
    except Exception as e:  # noqa: BLE001
        return {"status": "read_error", "error": "%s: %s" % (type(e).__name__, e)}
    finally:
        os.remove(out)
    exp = expected_rows(spec)
    bad = {m for m in ("typical", "edge")
           if [r for r in got if r[1] == m] != [r for r in exp if r[1] == m]}
    if not bad:
        return {"status": "ok"}
    if bad == {"edge"}:
        return {"status": "typical_only"}
    return {"status": "mismatch"}


def cmd_matrix_worker(mode, data_type, encoding, compressions):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for c in compressions:
            cell = matrix_cell(mode, data_type, encoding, c, tmp)
            print(json.dumps([mode, data_type, encoding, c, cell]), flush=True)


def cmd_matrix(out_path):
    """Run every combination in child processes (a crash in the C++ core only
    loses that combination) and write the support matrix as JSON."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def run(job, comps):
        mode, dt, enc = job
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "matrix-worker", mode, dt, enc]
            + comps, capture_output=True, text=True, timeout=600)
        cells = {}
        for line in proc.stdout.splitlines():
            if line.startswith("["):
                _, _, _, c, cell = json.loads(line)
                cells[c] = cell
        if proc.returncode != 0 and len(comps) == 1 and comps[0] not in cells:
            cells[comps[0]] = {"status": "crash", "error": "exit %d: %s" % (
                proc.returncode, proc.stderr.strip()[-300:])}
        return cells

    def run_all(job):
        cells = run(job, MATRIX_COMPRESSIONS)
        for c in MATRIX_COMPRESSIONS:  # retry each missing one alone
            if c not in cells:
                cells.update(run(job, [c]))
        return job, cells

    jobs = [(m, dt, e) for m in MATRIX_MODES for dt in MATRIX_TYPES for e in MATRIX_ENCODINGS]
    result = {m: {dt: {} for dt in MATRIX_TYPES} for m in MATRIX_MODES}
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for (m, dt, e), cells in pool.map(run_all, jobs):
            result[m][dt][e] = {c: cells[c] for c in MATRIX_COMPRESSIONS}
            print("%s %s %s: %s" % (m, dt, e, " ".join(
                cells[c]["status"] for c in MATRIX_COMPRESSIONS)), file=sys.stderr)
    statuses = {
        m: {dt: {e: {c: result[m][dt][e][c]["status"] for c in MATRIX_COMPRESSIONS}
                 for e in MATRIX_ENCODINGS} for dt in MATRIX_TYPES} for m in MATRIX_MODES}
    errors = {}
    for m in MATRIX_MODES:
        for dt in MATRIX_TYPES:
            for e in MATRIX_ENCODINGS:
                # Messages differ only in the compression named; keep the first.
                msgs = [result[m][dt][e][c]["error"] for c in MATRIX_COMPRESSIONS
                        if "error" in result[m][dt][e][c]]
                if msgs:
                    errors.setdefault(m, {}).setdefault(dt, {})[e] = msgs[0]

    def encodings_where(m, dt, wanted):
        return [e for e in MATRIX_ENCODINGS
                if all(statuses[m][dt][e][c] in wanted for c in MATRIX_COMPRESSIONS)]

    summary = {
        m: {dt: {
            "write_accepted": encodings_where(
                m, dt, ("ok", "typical_only", "mismatch", "read_error")),
            "identical": encodings_where(m, dt, ("ok",)),
            "identical_typical_values_only": encodings_where(m, dt, ("typical_only",)),
            "not_identical": encodings_where(m, dt, ("mismatch",)),
        } for dt in MATRIX_TYPES}
        for m in MATRIX_MODES
    }
    doc = {
        "generator": "python3 tsfile/tests/interop/apache_tsfile.py matrix "
                     "tsfile/tests/interop/apache_support.json",
        "tsfile_python": _pip_version("tsfile"),
        "data_types": MATRIX_TYPES,
        "encodings": MATRIX_ENCODINGS,
        "compressions": MATRIX_COMPRESSIONS,
        "page_writer_max_point_num_": MATRIX_PAGE_POINTS,
        "statuses": {
            "ok": "written; typical and edge values read back identically",
            "typical_only": "written; typical values read back identically, edge values do not",
            "mismatch": "written; typical values do not read back identically",
            "write_rejected": "the writer raised an error (register, write or close)",
            "read_error": "written, but the reader raised an error",
            "crash": "the process died",
        },
        "modes": {
            "tree_non_aligned": "register_timeseries with per-series encoding and "
                                "compression; Tablet + write_tablet",
            "aligned_via_table": "table-model writer (aligned chunk groups); encoding via "
                                 "set_tsfile_config per data type, compression via "
                                 "default_compression_type_ and time_compress_type_",
        },
        "summary": summary,
        "matrix": statuses,
        "errors": errors,
    }
    # One line per (mode, type, encoding) keeps the file reviewable.
    leaves = []

    def compact(obj, depth):
        if depth == 0:
            leaves.append(json.dumps(obj, ensure_ascii=False))
            return "@@%d@@" % (len(leaves) - 1)
        return {k: compact(v, depth - 1) for k, v in obj.items()}

    doc["summary"] = compact(doc["summary"], 2)
    doc["matrix"] = compact(doc["matrix"], 3)
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    for i, leaf in enumerate(leaves):
        text = text.replace('"@@%d@@"' % i, leaf, 1)
    json.loads(text)  # still valid JSON
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _pip_version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def main(argv):
    usage = "usage: apache_tsfile.py read FILE | write SPEC.json OUT | matrix OUT.json"
    if len(argv) >= 2 and argv[1] == "read" and len(argv) == 3:
        cmd_read(argv[2])
    elif len(argv) >= 2 and argv[1] == "write" and len(argv) == 4:
        cmd_write(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "matrix":
        cmd_matrix(argv[2])
    elif len(argv) >= 5 and argv[1] == "matrix-worker":
        cmd_matrix_worker(argv[2], argv[3], argv[4], argv[5:])
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SpecError as e:
        print("apache_tsfile.py: bad spec: %s" % e, file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - report any binding error tersely
        print("apache_tsfile.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
