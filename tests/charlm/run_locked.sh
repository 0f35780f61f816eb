#!/usr/bin/env bash
# Two trainings in one --out folder: the second is rejected while the first
# runs (expect_run_folder_locked in tests/lib.sh).
source "$(dirname "$0")/lib.sh"
expect_run_folder_locked "$CHARLM"
