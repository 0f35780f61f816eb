#!/usr/bin/env bash
# Resuming within and across run folders.
#
# A run resumed from an earlier checkpoint, into a folder that still holds
# the later checkpoints of its first continuation, keeps the checkpoint it
# writes and the one it started from, and leaves the later ones alone until
# it overwrites them. A checkpoint of one folder also resumes into a new or
# empty --out folder, and the same folder named another way counts as the
# same folder.
source "$(dirname "$0")/lib.sh"
expect_resume_folders "$CHARLM" --data "$TEXT" "${SMALL[@]}"
