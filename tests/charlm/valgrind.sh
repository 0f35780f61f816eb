#!/usr/bin/env bash
# charlm train, a resume and sample under valgrind memcheck: no invalid read
# or write, no use of uninitialised memory and no definite leak. Blocks that
# the OpenMP and OpenBLAS thread pools keep until exit show up as "still
# reachable" or "possibly lost" and do not count.
# CMake leaves this test out of sanitizer builds: valgrind cannot run a
# program built with AddressSanitizer.
source "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null; then
    skip "valgrind is not installed"
fi

# With neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY set, the program re-executes
# itself to set GOMP_SPINCOUNT, and valgrind, which follows an exec only with
# --trace-children=yes, would check only the part before it. Setting the
# variable here keeps the whole run under memcheck.
export GOMP_SPINCOUNT=1000

memcheck() {
    local log=$1
    shift
    valgrind --error-exitcode=1 --errors-for-leak-kinds=definite --leak-check=full \
        --log-file="$WORK/$log" "$CHARLM" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    local status=$?
    if [ $status -ne 0 ]; then
        fail "valgrind charlm $* exited with status $status; stderr: $(cat "$WORK/stderr")
valgrind log:
$(tail -n 60 "$WORK/$log")"
    fi
}

memcheck train.log train --data "$TEXT" --out run "${SMALL[@]}" --steps 4 --eval-interval 2 \
    --dropout 0.1 --threads 2
memcheck resume.log train --out run --resume run/ckpt-00000002.h5 --steps 6 --threads 1
memcheck sample.log sample --checkpoint run/ckpt-00000006.h5 --prompt "KEEPER:" --length 8 \
    --top-k 5
