#!/usr/bin/env bash
# Install what the test suite needs beyond the Rust toolchain:
#   * Apache TsFile's Python binding (PyPI tsfile==2.5.0, pulls numpy, pandas,
#     pyarrow) for tsfile/tests/interop/apache_tsfile.py;
#   * Python PostgreSQL clients (psycopg2, psycopg 3, asyncpg, SQLAlchemy 2,
#     pandas) and node-postgres for server/tests/clients.rs;
#   * psql (postgresql-client) and the PostgreSQL JDBC driver with a JDK
#     (libpostgresql-jdbc-java, default-jdk-headless) for server/tests/clients.rs;
#   * psqlODBC with unixODBC (odbc-postgresql, unixodbc) and pyodbc for
#     server/tests/clients/odbc_client.py.
# Idempotent and quiet: does nothing when everything is already there.
# Needs root (or sudo) only when apt-get has to run.
set -euo pipefail

TSFILE_VERSION=2.5.0
PYTHON=${PYTHON:-python3}

log() { echo "install-test-deps: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root to run: $*"
    return 1
  fi
}

# Run a command silently; show its output only if it fails.
quiet() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$out" >&2
    log "failed ($rc): $*"
  fi
  rm -f "$out"
  return "$rc"
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  quiet as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@"
}

tsfile_ok() {
  "$PYTHON" - "$TSFILE_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
assert version("tsfile") == sys.argv[1]
import tsfile, numpy, pandas, pyarrow  # noqa: F401  (the binding imports all three)
EOF
}

# --- psql ---------------------------------------------------------------------
if ! command -v psql >/dev/null 2>&1; then
  log "installing postgresql-client"
  apt_install postgresql-client
  command -v psql >/dev/null 2>&1 || { log "psql still missing"; exit 1; }
fi

# --- JDK and the PostgreSQL JDBC driver (server/tests/clients.rs) ---------------
JDBC_JAR=/usr/share/java/postgresql.jar
if ! command -v java >/dev/null 2>&1 || ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler' || [ ! -f "$JDBC_JAR" ]; then
  log "installing default-jdk-headless and libpostgresql-jdbc-java"
  apt_install default-jdk-headless libpostgresql-jdbc-java
  [ -f "$JDBC_JAR" ] || { log "$JDBC_JAR still missing"; exit 1; }
fi

# --- Python tsfile binding ----------------------------------------------------
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "installing python3"
  apt_install python3
fi
if ! tsfile_ok; then
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    log "installing python3-pip"
    apt_install python3-pip
  fi
  log "installing tsfile==$TSFILE_VERSION"
  # PIP_BREAK_SYSTEM_PACKAGES: Debian's own python3 is "externally managed"
  # (PEP 668); the tests need the package importable by plain python3.
  quiet env PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PYTHON" -m pip install --quiet --no-input "tsfile==$TSFILE_VERSION"
  if ! tsfile_ok; then
    log "tsfile==$TSFILE_VERSION is not importable after pip install"
    exit 1
  fi
fi

# --- Python PostgreSQL clients (server/tests/clients/python_clients.py) ----------
py_clients_ok() {
  "$PYTHON" -c 'import psycopg2, psycopg, asyncpg, greenlet, pandas, sqlalchemy; assert sqlalchemy.__version__ >= "2"' >/dev/null 2>&1
}
if ! py_clients_ok; then
  log "installing psycopg2-binary, psycopg[binary], asyncpg, sqlalchemy[asyncio], pandas"
  quiet env PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PYTHON" -m pip install --quiet --no-input \
    psycopg2-binary "psycopg[binary]" asyncpg "sqlalchemy[asyncio]>=2" pandas
  py_clients_ok || { log "Python PostgreSQL clients not importable after pip install"; exit 1; }
fi

# --- psqlODBC through pyodbc (server/tests/clients/odbc_client.py) --------------
if ! odbcinst -q -d 2>/dev/null | grep -q '^\[PostgreSQL Unicode\]'; then
  log "installing odbc-postgresql and unixodbc"
  apt_install odbc-postgresql unixodbc
  odbcinst -q -d 2>/dev/null | grep -q '^\[PostgreSQL Unicode\]' || { log "psqlODBC driver still not registered"; exit 1; }
fi
if ! "$PYTHON" -c 'import pyodbc' >/dev/null 2>&1; then
  log "installing pyodbc"
  quiet env PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PYTHON" -m pip install --quiet --no-input pyodbc
  "$PYTHON" -c 'import pyodbc' >/dev/null 2>&1 || { log "pyodbc not importable after pip install"; exit 1; }
fi

# --- node-postgres (server/tests/clients/node_pg.js) ------------------------------
if ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm"
  apt_install nodejs npm
fi
if [ ! -f "$(npm root -g)/pg/package.json" ]; then
  log "installing node-postgres (npm pg)"
  quiet npm install -g --silent --no-fund --no-audit pg@8
  [ -f "$(npm root -g)/pg/package.json" ] || { log "npm pg still missing"; exit 1; }
fi
