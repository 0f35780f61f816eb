#!/usr/bin/env python3
"""Writes the IDX folders that the ddpm program tests read (run it from anywhere).

The valid training data of those tests is tests/data/idx (28 x 28 images).
Each folder here is another --data folder:
  small14/         a valid set of 14 x 14 images: 5 train and 3 t10k items
  bad-magic/       train images whose magic number is not an IDX one
  truncated/       train images cut off in the middle of the pixels
  count-mismatch/  5 train images with 4 labels
  no-images/       train labels without the images file
  more-items/      a valid set of 28 x 28 images: 6 train and 3 t10k items
Pixel (i, r, c) is (37 * i + 11 * r + 5 * c) % 256 and label i is
(3 * i + 1) % 10, as in tests/data/idx. Running the script again gives
identical bytes.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pixels(first, count, side):
    return bytes((37 * i + 11 * r + 5 * c) % 256
                 for i in range(first, first + count)
                 for r in range(side) for c in range(side))


def images_file(first, count, side, magic=0x00000803):
    header = struct.pack(">IIII", magic, count, side, side)
    return header + pixels(first, count, side)


def labels_file(first, count):
    labels = bytes((3 * i + 1) % 10 for i in range(first, first + count))
    return struct.pack(">II", 0x00000801, count) + labels


def write(relative, data):
    path = os.path.join(HERE, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    write("small14/train-images-idx3-ubyte", images_file(0, 5, 14))
    write("small14/train-labels-idx1-ubyte", labels_file(0, 5))
    write("small14/t10k-images-idx3-ubyte", images_file(5, 3, 14))
    write("small14/t10k-labels-idx1-ubyte", labels_file(5, 3))

    write("bad-magic/train-images-idx3-ubyte", images_file(0, 5, 28, magic=0x12345678))
    write("bad-magic/train-labels-idx1-ubyte", labels_file(0, 5))

    # 16 header bytes and 1000 of the 3920 pixel bytes.
    write("truncated/train-images-idx3-ubyte", images_file(0, 5, 28)[:16 + 1000])
    write("truncated/train-labels-idx1-ubyte", labels_file(0, 5))

    write("count-mismatch/train-images-idx3-ubyte", images_file(0, 5, 28))
    write("count-mismatch/train-labels-idx1-ubyte", labels_file(0, 4))

    write("no-images/train-labels-idx1-ubyte", labels_file(0, 5))

    write("more-items/train-images-idx3-ubyte", images_file(0, 6, 28))
    write("more-items/train-labels-idx1-ubyte", labels_file(0, 6))
    write("more-items/t10k-images-idx3-ubyte", images_file(6, 3, 28))
    write("more-items/t10k-labels-idx1-ubyte", labels_file(6, 3))


if __name__ == "__main__":
    main()
