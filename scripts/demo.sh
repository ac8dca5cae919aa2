#!/usr/bin/env bash
# The README's demo: the LightGBM + Alpha158 workflow on the embedded simulated market
# (400 stocks, 2015-2022), tracked as a run under ./alphalab-runs/, then the run list.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/alphalab run examples/workflow_lightgbm_alpha158.yaml
$BIN/alphalab exp runs workflow_lightgbm_alpha158
