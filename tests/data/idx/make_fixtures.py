#!/usr/bin/env python3
"""Writes the IDX test files in this folder (run it from anywhere).

The images are 28 x 28 with pixel (i, r, c) = (37 * i + 11 * r + 5 * c) % 256
for item number i, and the labels are (3 * i + 1) % 10; tests/test_idx.c
recomputes both. Items 0-4 form the train split, written gzip-compressed here
and plain under plain/; items 5-7 form the t10k split, written plain. corrupt/
contains one broken file per error the loader reports, and a t10k
split without its labels file. Compression uses mtime 0,
so running the script again gives identical bytes.
"""
import gzip
import os
import struct

ROWS = COLS = 28
HERE = os.path.dirname(os.path.abspath(__file__))


def pixels(first, count):
    return bytes((37 * i + 11 * r + 5 * c) % 256
                 for i in range(first, first + count)
                 for r in range(ROWS) for c in range(COLS))


def labels(first, count):
    return bytes((3 * i + 1) % 10 for i in range(first, first + count))


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def images_file(first, count):
    return idx(0x00000803, [count, ROWS, COLS], pixels(first, count))


def labels_file(first, count):
    return idx(0x00000801, [count], labels(first, count))


def write(relative, data):
    path = os.path.join(HERE, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def main():
    write("train-images-idx3-ubyte.gz", gz(images_file(0, 5)))
    write("train-labels-idx1-ubyte.gz", gz(labels_file(0, 5)))
    write("plain/train-images-idx3-ubyte", images_file(0, 5))
    write("plain/train-labels-idx1-ubyte", labels_file(0, 5))
    write("t10k-images-idx3-ubyte", images_file(5, 3))
    write("t10k-labels-idx1-ubyte", labels_file(5, 3))

    valid = images_file(0, 3)
    header = 16
    write("corrupt/empty-idx3-ubyte", b"")
    write("corrupt/short-header-idx3-ubyte", valid[:10])
    write("corrupt/bad-magic-idx3-ubyte", struct.pack(">I", 0x12345678) + valid[4:])
    write("corrupt/float-images-idx3-ubyte",
          idx(0x00000D03, [1, 2, 2], struct.pack(">4f", 0.0, 0.25, 0.5, 1.0)))
    write("corrupt/matrix-idx2-ubyte", idx(0x00000802, [2, 3], bytes(range(6))))
    write("corrupt/zero-rows-idx3-ubyte", idx(0x00000803, [1, 0, 28], b""))
    truncated = valid[:header + 2000]
    write("corrupt/truncated-images-idx3-ubyte", truncated)
    write("corrupt/truncated-images-idx3-ubyte.gz", gz(truncated))
    # A gzip stream cut off inside the deflate data, and one whose CRC-32
    # trailer (the last 8 bytes hold CRC-32 then size) no longer matches.
    compressed = gz(valid)
    write("corrupt/cut-off-images-idx3-ubyte.gz", compressed[:len(compressed) // 2])
    bad_crc = bytearray(compressed)
    bad_crc[-8] ^= 0xFF
    write("corrupt/bad-crc-images-idx3-ubyte.gz", bytes(bad_crc))
    write("corrupt/trailing-bytes-idx3-ubyte", valid + b"\x00\x01\x02")
    # A split whose labels file is missing.
    write("corrupt/t10k-images-idx3-ubyte", images_file(5, 3))


if __name__ == "__main__":
    main()
