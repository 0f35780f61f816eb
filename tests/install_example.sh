#!/usr/bin/env bash
# Installs tapegrad from a build tree into a temporary prefix and builds the
# RMSNorm example of docs/writing-a-layer.md against that copy alone: once
# with CMake's find_package and once with pkg-config, running the example's
# check program each time. First checks that every line of C and CMake the
# guide quotes still occurs in the example, so the guide cannot drift from it.
#
# Usage: tests/install_example.sh SOURCE_DIR BUILD_DIR
# Environment, all optional (CTest sets them from the build):
#   CC              C compiler for the example (default: cc)
#   EXAMPLE_CFLAGS  extra C flags for the example, such as the build's
#                   warnings and sanitizers
#   BUILD_TYPE      CMAKE_BUILD_TYPE of the example (default: Release)
#   PKG_CONFIG      pkg-config program (default: pkg-config)
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
    exit 2
fi
source_dir=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)
example_dir=$source_dir/examples/rmsnorm
guide=$source_dir/docs/writing-a-layer.md
cc=${CC:-cc}
pkg_config=${PKG_CONFIG:-pkg-config}
read -r -a cflags <<< "${EXAMPLE_CFLAGS:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "== guide excerpts"
# Lines inside ```c and ```cmake fences, trimmed, without blank lines and
# "..." elisions.
awk '/^```(c|cmake)$/ { inside = 1; next } /^```/ { inside = 0; next } inside' "$guide" \
    | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
    | grep -vE '^$|^\.\.\.$|^/\* \.\.\. \*/$|^# \.\.\.$' > "$tmp/excerpts" || true
excerpt_count=$(wc -l < "$tmp/excerpts")
if [ "$excerpt_count" -lt 20 ]; then
    echo "found only $excerpt_count quoted lines in $guide; expected the guide's" \
        "\`\`\`c and \`\`\`cmake blocks" >&2
    exit 1
fi
missing=0
while IFS= read -r line; do
    if ! grep -qF -- "$line" "$example_dir"/*.c "$example_dir"/*.h "$example_dir"/CMakeLists.txt
    then
        echo "$guide quotes a line that examples/rmsnorm does not contain: $line" >&2
        missing=1
    fi
done < "$tmp/excerpts"
if [ "$missing" -ne 0 ]; then
    echo "update the guide's excerpts to match the example's code" >&2
    exit 1
fi
echo "all $excerpt_count quoted lines occur in the example"

echo "== install into $prefix"
cmake --build "$build_dir" --target tapegrad tapegrad_f64
cmake --install "$build_dir" --prefix "$prefix"

echo "== build the example with find_package"
cmake -S "$example_dir" -B "$tmp/example" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${EXAMPLE_CFLAGS:-}" \
    -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
found_dir=$(sed -n 's/^tapegrad_DIR:PATH=//p' "$tmp/example/CMakeCache.txt")
case "$found_dir" in
"$prefix"/*) ;;
*)
    echo "find_package found tapegrad in '$found_dir', not under $prefix" >&2
    exit 1
    ;;
esac
cmake --build "$tmp/example" -j 2
"$tmp/example/check_rmsnorm"

echo "== build the example with pkg-config"
pc_file=$(find "$prefix" -name tapegrad_f64.pc -print -quit)
if [ -z "$pc_file" ]; then
    echo "tapegrad_f64.pc is missing under $prefix" >&2
    exit 1
fi
PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_PATH
read -r -a f64_flags <<< "$("$pkg_config" --cflags --libs tapegrad_f64)"
"$cc" -std=c11 "${cflags[@]}" -o "$tmp/check_rmsnorm_pc" "$example_dir/check_rmsnorm.c" \
    "$example_dir/rmsnorm.c" "$example_dir/rmsnorm_layer.c" "${f64_flags[@]}"
"$tmp/check_rmsnorm_pc"

# The float32 build: the layer's sources compile with tapegrad.pc's flags.
read -r -a f32_flags <<< "$("$pkg_config" --cflags tapegrad)"
for file in rmsnorm.c rmsnorm_layer.c; do
    "$cc" -std=c11 "${cflags[@]}" "${f32_flags[@]}" -c "$example_dir/$file" \
        -o "$tmp/${file%.c}.o"
done
echo "install example passed"
