"""Edits and checks charlm checkpoints for the program tests, with h5py.

    h5edit.py set-attr FILE OBJECT NAME VALUE   set a string attribute
    h5edit.py widen FILE DATASET                add two columns to a 2-D dataset
    h5edit.py fresh-optimizer FILE              check that optimizer/ has no state

Exits with status 1 and a message when a check fails.
"""
import sys

import h5py
import numpy as np


def set_attr(path, obj, name, value):
    with h5py.File(path, "r+") as f:
        f[obj].attrs[name] = value


def widen(path, dataset):
    with h5py.File(path, "r+") as f:
        old = f[dataset][()]
        del f[dataset]
        f[dataset] = np.zeros((old.shape[0], old.shape[1] + 2), dtype=old.dtype)


def fresh_optimizer(path):
    problems = []
    with h5py.File(path, "r") as f:
        opt = f["optimizer"]
        if int(opt.attrs["step"]) != 0:
            problems.append("optimizer step is %d, expected 0" % opt.attrs["step"])
        flags = opt["initialized"][()]
        if flags.any():
            problems.append("initialized has %d non-zero flags" % int(np.count_nonzero(flags)))
        slots = [name for name in opt if isinstance(opt[name], h5py.Group)]
        if not slots:
            problems.append("optimizer/ has no state slots to check")
        for slot in slots:
            for name, dataset in opt[slot].items():
                nonzero = int(np.count_nonzero(dataset[()]))
                if nonzero:
                    problems.append(
                        "optimizer/%s/%s has %d non-zero values" % (slot, name, nonzero))
    if problems:
        print("%s: %s" % (path, "; ".join(problems)), file=sys.stderr)
        sys.exit(1)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "set-attr":
        set_attr(*args)
    elif command == "widen":
        widen(*args)
    elif command == "fresh-optimizer":
        fresh_optimizer(*args)
    else:
        print("unknown command %r" % command, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
