#!/usr/bin/python3
"""Reads a checkpoint written by tests/test_checkpoint.c (test
h5py_reads_what_library_wrote) with h5py and checks names, shapes, types and
values against what that test wrote, as an independent reader of the format
in docs/checkpoint-format.md.

Usage: /usr/bin/python3 tests/checkpoint_read.py FILE
Exit status: 0 if every check passes, 1 with one line per failed check,
77 if h5py or numpy cannot be imported (the C test then skips).
"""
import re
import sys

try:
    import h5py
    import numpy as np
except ImportError as error:
    print(f"cannot import h5py and numpy: {error}; install python3-h5py")
    sys.exit(77)

# The values the C test writes, kept in step with write_reference_checkpoint() there.
EXPECTED_ROOT = {
    "format": "tapegrad-checkpoint",
    "format_version": 1,
    "model_kind": "charlm",
    "step": 4242,
}
EXPECTED_TENSORS = {
    "model/blocks.0.attn.c_attn.weight": np.arange(12, dtype=np.float64).reshape(3, 4) * 0.25
    - 1.5,
    "model/wte.weight": np.array([(-1.0) ** i * 2.0 ** -i for i in range(10)]).reshape(5, 2),
}
EXPECTED_ARRAYS = {
    "rng/train": (np.uint64, [0, 1, 2**63, 2**64 - 1]),
    "data/order": (np.int32, [4, 0, 3, 1, 2]),
}
EXPECTED_CONFIG = {"n_embd": 128, "lr": 3e-4, "dataset": "tiny shakespeare"}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    with h5py.File(path, "r") as f:
        for name, value in EXPECTED_ROOT.items():
            check(f.attrs.get(name) == value,
                  f"root attribute {name} is {f.attrs.get(name)!r}, expected {value!r}")
        created = f.attrs.get("created", "")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(created)) is not None,
              f"root attribute created {created!r} is not ISO 8601 UTC")
        check(isinstance(f.attrs.get("library_version"), str),
              f"root attribute library_version is {f.attrs.get('library_version')!r}")
        check(sorted(f.keys()) == ["config", "data", "model", "rng"],
              f"groups are {sorted(f.keys())}, expected config, data, model, rng")
        check(sorted(f["model"].keys()) == sorted(k.split("/", 1)[1] for k in EXPECTED_TENSORS),
              f"model holds {sorted(f['model'].keys())}")

        for name, expected in EXPECTED_TENSORS.items():
            dataset = f[name]
            check(dataset.dtype == np.float32, f"{name} has type {dataset.dtype}, expected float32")
            check(dataset.shape == expected.shape,
                  f"{name} has shape {dataset.shape}, expected {expected.shape}")
            if dataset.shape == expected.shape:
                check(np.array_equal(dataset[()], expected.astype(np.float32)),
                      f"{name} holds {dataset[()].tolist()}, expected {expected.tolist()}")

        for name, (dtype, values) in EXPECTED_ARRAYS.items():
            dataset = f[name]
            check(dataset.dtype == dtype, f"{name} has type {dataset.dtype}, expected {dtype}")
            check(dataset.shape == (len(values),),
                  f"{name} has shape {dataset.shape}, expected ({len(values)},)")
            check(dataset[()].tolist() == values,
                  f"{name} holds {dataset[()].tolist()}, expected {values}")

        config = f["config"].attrs
        for name, value in EXPECTED_CONFIG.items():
            check(config.get(name) == value,
                  f"config attribute {name} is {config.get(name)!r}, expected {value!r}")
        check(isinstance(config.get("n_embd"), np.int64),
              f"config n_embd has type {type(config.get('n_embd'))}, expected int64")
        check(isinstance(config.get("lr"), np.float64),
              f"config lr has type {type(config.get('lr'))}, expected float64")

    for failure in failures:
        print(failure)
    if failures:
        return 1
    print(f"{path}: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
