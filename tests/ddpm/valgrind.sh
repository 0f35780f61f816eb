#!/usr/bin/env bash
# ddpm train, a resume, sample (DDIM and DDPM), eval and inspect under
# valgrind memcheck: no invalid read or write, no use of uninitialised memory
# and no definite leak. Blocks that the OpenMP and OpenBLAS thread pools keep
# until exit show up as "still reachable" or "possibly lost" and do not count.
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
        --log-file="$WORK/$log" "$DDPM" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    local status=$?
    if [ $status -ne 0 ]; then
        fail "valgrind ddpm $* exited with status $status; stderr: $(cat "$WORK/stderr")
valgrind log:
$(tail -n 60 "$WORK/$log")"
    fi
}

memcheck train.log train --data "$IDX_DATA" --out run "${TINY[@]}" --steps 4 --eval-interval 2 \
    --ema 0.9 --threads 2
memcheck resume.log train --out run --resume run/ckpt-00000002.h5 --steps 6 --threads 1
memcheck sample.log sample --checkpoint run/ckpt-00000006.h5 --steps 3 --count 3 --batch 2 \
    --eta 0.5 --out ddim.png
memcheck sample_ddpm.log sample --checkpoint run/ckpt-00000006.h5 --sampler ddpm --count 2 \
    --clip-x0 --out ddpm.png
memcheck eval.log eval --checkpoint run/ckpt-00000006.h5
memcheck inspect.log inspect --checkpoint run/ckpt-00000006.h5
memcheck mlp.log train --data moons --arch mlp --hidden 16 --t-freq-dim 16 --t-hidden 16 \
    --timesteps 20 --batch-size 8 --val-count 16 --steps 3 --out moons --threads 1
