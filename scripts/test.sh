#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine, then runs all of it.
# A missing dependency fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build from clean gains nothing from incremental caches, and they were half of target/debug
# in a test build measured here: a CI run once ran out of disk writing them. A full run without
# them takes ~7.5 GB in target/ (2.1 GB debug, 5.3 GB fuzz). CARGO_INCREMENTAL=1 keeps them.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log() { printf '\n==> %s\n' "$*"; }

# System programs the end-to-end tests drive for real.
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# kubectl renders deploy/kubernetes/ (`kubectl kustomize`) for tests/e2e/kubernetes.rs.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
# vmagent runs deploy/agents/vmagent.sh for tests/e2e/agents.rs.
command -v vmagent >/dev/null 2>&1 || need+=(victoria-metrics)
# Alertmanager receives the ruler's alerts in tests/e2e/ruler.rs.
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# Headless Chromium loads the fleet status page for tests/e2e/fleet_page.rs.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A real Alertmanager receives the ruler's alerts (query/src/ruler/notifier/tests.rs).
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v kubectl >/dev/null && command -v vmagent >/dev/null && command -v chromium >/dev/null && command -v prometheus-alertmanager >/dev/null

# A real S3-compatible server for the object-store tests (moto's, from PyPI). The e2e harness
# serves moto's app itself (tests/e2e/harness.rs, MOTO_SERVER), so the module it imports is the
# probe, and the major version is pinned.
if ! python3 -c "import moto.moto_server.werkzeug_app" >/dev/null 2>&1; then
  log "installing moto[server] (S3-compatible server)"
  python3 -m pip install -q "moto[server]>=5,<6"
fi
python3 -c "import moto.moto_server.werkzeug_app"

# The real OpenTelemetry Python SDK (and grpcio, pyarrow) the OTLP end-to-end tests drive, DuckDB, the
# Loki client, and kubernetes-validate (the Kubernetes schemas for deploy/kubernetes/), at the
# versions pinned in tests/e2e/python/requirements.txt.
if ! python3 tests/e2e/python/requirements_ok.py >/dev/null 2>&1; then
  log "installing the Python test clients (tests/e2e/python/requirements.txt)"
  python3 -m pip install -q -r tests/e2e/python/requirements.txt
fi
python3 tests/e2e/python/requirements_ok.py

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

log "format"
cargo fmt --all -- --check

log "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

log "tests"
cargo nextest run --workspace --all-features --locked --profile ci

log "doc tests"
cargo test --workspace --all-features --locked --doc

log "fuzz (every target of ingest/fuzz and query/fuzz, 45 s each; installs cargo-fuzz when missing)"
FUZZ_SEED=${FUZZ_SEED:-1} bash scripts/fuzz.sh
