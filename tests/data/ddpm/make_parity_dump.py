#!/usr/bin/python3
"""Write the PyTorch parity fixtures of the ddpm program.

Usage: /usr/bin/python3 make_parity_dump.py REF_DDPM_DIR OUT_DIR

REF_DDPM_DIR is the folder of the PyTorch reference trainer ref_ddpm.py.
The script runs its --dump on tiny models and keeps a slim copy of each dump:
the initial weights, one batch (x0, t, noise, x_t, eps_pred), the loss in
float32 and float64, and the float64 gradients. The timestep embedder's
sinusoid width and hidden width are lowered from 128 and 512 to 16 and 32,
through the defaults of ref_ddpm.TimestepEmbedder, so that each fixture stays
near 200 KB; the rest of the model is ref_ddpm.py's own.
"""
import os
import sys
import tempfile

import h5py

CASES = {
    "parity_dit.h5": ["--arch", "dit", "--patch", "4", "--width", "16", "--depth", "2",
                      "--heads", "2", "--batch-size", "3"],
    "parity_mlp.h5": ["--arch", "mlp", "--hidden", "8", "--batch-size", "3"],
}
KEEP = ["x0", "t", "noise", "x_t", "eps_pred", "loss", "loss_f64"]


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ref_dir, out_dir = argv[1], argv[2]
    sys.path.insert(0, ref_dir)
    import bench_env
    bench_env.setup_threads(1)
    import ref_ddpm
    ref_ddpm.TimestepEmbedder.__init__.__defaults__ = (16, 32)
    os.makedirs(out_dir, exist_ok=True)
    for name, flags in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            args = ref_ddpm.parse_args(flags + ["--threads", "1", "--seed", "0", "--out", tmp,
                                                "--dump", tmp, "--dump-only"])
            ref_ddpm.main(args)
            with h5py.File(os.path.join(tmp, "grads.h5"), "r") as src, \
                    h5py.File(os.path.join(out_dir, name), "w") as dst:
                for key, value in src.attrs.items():
                    dst.attrs[key] = value
                dst.attrs["t_embed"] = "freq_dim 16, hidden 32"
                for group in ("weights", "grads_f64", "buffers"):
                    if group in src:
                        src.copy(group, dst)
                for key in KEEP:
                    src.copy(key, dst)
        print(f"wrote {os.path.join(out_dir, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
