#!/usr/bin/env bash
# Runs the continuous re-evaluation benchmark (internal/scan
# BenchmarkReevaluate): a registry of synthetic images made of real Go
# module names and versions, scanned against the older of the two real Go
# vulnerability database snapshots in the fixtures; then the newer
# snapshot lands (521 advisory changes) and the benchmark times the
# change-set re-evaluation against the baseline in the same run, a full
# re-match of every continuous image from its stored inventory by as many
# scan workers as CPUs. It prints, per case, reeval-s, reeval-cpu-s,
# full-rescan-s, full-rescan-cpu-s, x-faster, opened and MiB-alloc/op
# (compare images=2500 and images=10000 at the same touched count: memory
# must not grow with the images the change leaves alone).
#
#   bench/run-reeval.sh                     # every case
#   bench/run-reeval.sh 'images=10000/touched=2000'
#
# Setting up 10,000 scanned images takes a few minutes; the re-evaluation
# is timed alone. REEVAL_CPUPROFILE=FILE writes its CPU profile.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
exec go test -run '^$' -bench "Reevaluate/${1:-}" -benchtime 1x -timeout 60m ./internal/scan
