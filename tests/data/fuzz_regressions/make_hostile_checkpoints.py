#!/usr/bin/python3
"""Writes the checkpoints of checkpoint/ that point outside themselves, or
hold no data where a tensor should be, for tests/test_fuzz_regressions.c.
Mutating bytes seldom produces them, so they are written with h5py. Each
starts as a copy of fuzz/corpus/checkpoint/valid.h5 (model kind "fuzz"), then
changes one object:

  external-link.h5     model/weight is an external link into the file itself
  soft-link.h5         model is a soft link to the group /model_data
  external-storage.h5  model/bias keeps its elements in the raw file bias.raw
  virtual.h5           model/bias is a virtual dataset over /bias_data
  null-dataspace.h5    scale has a null dataspace (no element)

The reader must reject each object it is asked for with TG_ERR_FORMAT. An
external link can name any file and a raw or virtual source any path, a FIFO
included, so following them could read other files or block forever.

Usage (from this folder): /usr/bin/python3 make_hostile_checkpoints.py
"""
import shutil

import h5py
import numpy as np

SEED = "../../../fuzz/corpus/checkpoint/valid.h5"
OUT = "checkpoint/"


def copy_seed(name):
    shutil.copyfile(SEED, OUT + name)
    return h5py.File(OUT + name, "r+")


with copy_seed("external-link.h5") as f:
    f["model/weight_data"] = f["model/weight"][...]
    del f["model/weight"]
    f["model/weight"] = h5py.ExternalLink("external-link.h5", "/model/weight_data")

with copy_seed("soft-link.h5") as f:
    f.move("model", "model_data")
    f["model"] = h5py.SoftLink("/model_data")

with copy_seed("external-storage.h5") as f:
    del f["model/bias"]
    f["model"].create_dataset("bias", shape=(3,), dtype="<f4", external=[("bias.raw", 0, 12)])

with copy_seed("virtual.h5") as f:
    f["bias_data"] = f["model/bias"][...]
    layout = h5py.VirtualLayout(shape=(3,), dtype="<f4")
    layout[:] = h5py.VirtualSource(".", "bias_data", shape=(3,))
    del f["model/bias"]
    f["model"].create_virtual_dataset("bias", layout)

with copy_seed("null-dataspace.h5") as f:
    del f["scale"]
    f["scale"] = h5py.Empty("<f4")
