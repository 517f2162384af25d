"""Convert pytorch-fid's Inception weights to the .npz that `--inception_weights` reads.

  python -m scripts.convert_inception_weights \
      --src=pt_inception-2015-12-05-6726825d.pth --out=inception_fid.npz

The .pth is pytorch-fid's release asset (TF's 2015-12-05 FID graph ported to PyTorch). Only
this conversion needs torch (`pip install torch`, CPU build is enough); it reads the .pth with
weights_only=True, so no arbitrary pickled code runs, and writes plain arrays under the same
state_dict names, which aegan_jax loads without torch and without pickle.
"""

import os
from typing import Any, Mapping

from absl import flags
from absl import logging
import numpy as np

from aegan_jax import cli

flags.DEFINE_string("src", None, "pytorch-fid's pt_inception-2015-12-05-6726825d.pth.")
flags.DEFINE_string("out", "inception_fid.npz", "Output .npz path.")
flags.mark_flags_as_required(["src"])
FLAGS = flags.FLAGS


def convert(state_dict: Mapping[str, Any], source: str) -> dict[str, np.ndarray]:
  """A state_dict of numpy arrays (or tensors) -> the checked float32 arrays to write.

  Drops BatchNorm's num_batches_tracked counters (unused at inference) and raises UserError
  naming `source` if the tensors are not pytorch-fid's FID Inception.
  """
  from aegan_jax.features import inception  # here: flag errors should not wait on jax

  arrays = {}
  for name, value in state_dict.items():
    if name.endswith(".num_batches_tracked"):
      continue
    if hasattr(value, "detach"):  # a torch tensor
      value = value.detach().cpu().numpy()
    arrays[name] = np.asarray(value)
  inception.state_dict_to_variables(arrays, source)  # names, shapes, dtypes; raises UserError
  return {k: v.astype(np.float32) for k, v in arrays.items()}


def main(argv):
  del argv
  if not os.path.isfile(FLAGS.src):
    raise cli.UserError(f"--src {FLAGS.src} does not exist; download pytorch-fid's weights from"
                        " https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                        "pt_inception-2015-12-05-6726825d.pth")
  if not FLAGS.out.endswith(".npz"):
    raise cli.UserError(f"--out must name a .npz file, got {FLAGS.out}")
  try:
    import torch
  except ImportError as e:
    raise cli.UserError("converting the .pth needs PyTorch for this step only: pip install torch"
                        " (the CPU build is enough), then rerun") from e

  try:
    # weights_only=True: unpickle tensors and containers only, never arbitrary objects.
    state_dict = torch.load(FLAGS.src, map_location="cpu", weights_only=True)
  except Exception as e:  # torch raises many types for bad files; all mean "not this file"
    raise cli.UserError(f"--src {FLAGS.src} is not a PyTorch weights file torch.load can read"
                        f" with weights_only=True ({type(e).__name__}); pass pytorch-fid's"
                        " pt_inception-2015-12-05-6726825d.pth") from e
  if isinstance(state_dict, Mapping) and isinstance(state_dict.get("state_dict"), Mapping):
    state_dict = state_dict["state_dict"]
  if not isinstance(state_dict, Mapping):
    raise cli.UserError(f"--src {FLAGS.src} holds a {type(state_dict).__name__}, not a state_dict;"
                        " pass pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
  arrays = convert(state_dict, f"--src {FLAGS.src}")
  out_dir = os.path.dirname(os.path.abspath(FLAGS.out))
  os.makedirs(out_dir, exist_ok=True)
  # Write beside the target and rename, so an interrupted run never leaves a truncated .npz
  # that a later --inception_weights would trip over.
  tmp = FLAGS.out[:-len(".npz")] + ".partial.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, FLAGS.out)
  logging.info("Wrote %d tensors to %s", len(arrays), FLAGS.out)


if __name__ == "__main__":
  cli.run(main)
