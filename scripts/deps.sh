#!/usr/bin/env bash
# Installs the Debian packages tapegrad needs, or lists the missing ones.
#
# Usage: scripts/deps.sh [extra-package ...]
# Run as root on Debian, it installs whatever is missing with apt-get. Run as
# another user, it prints the apt-get command to run and exits with status 1.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libopenblas-openmp-dev libhdf5-dev hdf5-tools libcriterion-dev zlib1g-dev libpng-dev
    valgrind python3 python3-h5py python3-numpy
    "$@"
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "Missing packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
