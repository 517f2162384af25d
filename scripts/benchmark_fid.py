"""Time FID with the domain classifier on N real vs N generated MNIST-size images (JSON).

  python -m scripts.benchmark_fid [--num=10000] [--dataset=mnist5k] [--workdir=W]

With --workdir, the generated images come from that run's generator; without, they are
real test/train images shifted by noise (the timing does not depend on what the pixels are).
Prints one JSON line: feature extraction and Frechet-distance seconds, and the total.
"""

import json
import time

from absl import flags

from aegan_jax import cli

flags.DEFINE_integer("num", 10000, "Images per side.")
flags.DEFINE_string("dataset", "mnist5k", "Dataset whose classifier gives the features.")
flags.DEFINE_string("data_dir", "", "TFDS data dir.")
flags.DEFINE_string("workdir", "", "Optional training run to draw the generated side from.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import jax
  import numpy as np
  from aegan_jax import data, evaluation
  from aegan_jax.features import classifier as classifier_lib
  from aegan_jax.metrics.fid import fid

  clf = classifier_lib.load(FLAGS.dataset, FLAGS.data_dir)
  dataset = data.load(FLAGS.dataset, FLAGS.data_dir)
  rng = np.random.default_rng(0)
  real_pool = np.concatenate([np.asarray(c) for c in dataset.train_chunks(5000)])
  real = real_pool[rng.integers(0, len(real_pool), FLAGS.num)]  # with replacement if N > pool
  if FLAGS.workdir:
    from aegan_jax import train
    _, strategy, state, _ = train.load_for_sampling(FLAGS.workdir)
    fake = evaluation.sample(strategy, state, FLAGS.num, seed=0)
  else:
    fake = np.clip(real[::-1] + rng.normal(0, 0.1, real.shape).astype(np.float32), 0, 1)
  clf.features(real[:100])  # compile outside the timing, as a long run would have done
  start = time.perf_counter()
  f_real = clf.features(real)
  t_real = time.perf_counter() - start
  start = time.perf_counter()
  f_fake = clf.features(fake)
  t_fake = time.perf_counter() - start
  start = time.perf_counter()
  value = fid(f_real, f_fake)
  t_fid = time.perf_counter() - start
  print(json.dumps({
      "benchmark": "fid_domain_classifier", "dataset": FLAGS.dataset, "num_real": FLAGS.num,
      "num_generated": FLAGS.num, "feature_dim": int(f_real.shape[1]),
      "generated_from": FLAGS.workdir or "noisy real images",
      "device": jax.devices()[0].device_kind, "device_count": jax.device_count(),
      "features_real_s": round(t_real, 3), "features_generated_s": round(t_fake, 3),
      "frechet_distance_s": round(t_fid, 3), "total_s": round(t_real + t_fake + t_fid, 3),
      "fid": value}))


if __name__ == "__main__":
  cli.run(main)
