#!/bin/bash
# Every check and every test: formatting, lints, unit, golden, property,
# CLI and real-kernel tests. Real-kernel tests need root and cgroup v1; they
# say why they skip outside CI and fail inside it (CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
sh scripts/toolchain.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test (benches are run by cargo bench, not here)"
cargo test --workspace 2>&1 | tee target/test-output.txt
# One closing line for the whole run.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all tests: %d passed, %d failed\n", p, f }' target/test-output.txt
