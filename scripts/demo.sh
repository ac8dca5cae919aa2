#!/usr/bin/env bash
# The README's demo: runs the most complete workflow alphalab has, on the embedded default data.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/alphalab --version
$BIN/alphalab config show
