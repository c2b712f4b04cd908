#!/usr/bin/env bash
# The README's test command: every test in the workspace, quietly, ending
# with the runner's summary. Run scripts/install-test-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --cargo-quiet --status-level fail --final-status-level fail \
    --failure-output final --no-fail-fast "$@"
else
  exec cargo test --workspace --quiet "$@"
fi
