"""Evaluation protocols: what to sample, which metric fits which dataset, and the record.

Each result carries its protocol next to the number (sample counts, seed, geometry or
feature network), so a figure can be set beside a published one only when they match.
"""

import os

import jax
import numpy as np

from aegan_jax.errors import UserError
from aegan_jax.metrics import modes as modes_lib

# The 2-D benchmarks' geometry (VEEGAN protocol; PROTOCOLS.md section 1).
MIXTURES = {
    "ring": (modes_lib.ring_means, modes_lib.RING_STD),
    "grid": (modes_lib.grid_means, modes_lib.GRID_STD),
}
VEEGAN_SAMPLES = 2500


def sample(strategy, state, num: int, seed: int, chunk: int = 10_000,
           generate=None) -> np.ndarray:
  """num generator samples as numpy, drawn in chunks with keys fold_in(key(seed), i)."""
  generate = generate or jax.jit(strategy.generate, static_argnums=2)
  key = jax.random.key(seed)
  return np.concatenate([
      np.asarray(generate(state, jax.random.fold_in(key, i), min(chunk, num - start)))
      for i, start in enumerate(range(0, num, chunk))])


def mixture_modes(dataset: str, samples: np.ndarray) -> dict:
  """The VEEGAN protocol on 2-D samples: modes captured, % HQ (within 3 std), reverse KL."""
  if dataset not in MIXTURES:
    raise UserError(f"the mode protocol for 2-D samples fits ring and grid, not {dataset!r}")
  means_fn, std = MIXTURES[dataset]
  means = means_fn()
  stats = modes_lib.mode_stats(samples, means, std)
  return {"modes_captured": stats["modes_captured"], "num_modes": len(means),
          "high_quality_percent": 100.0 * stats["high_quality_fraction"],
          "reverse_kl": stats["reverse_kl"], "counts": stats["counts"],
          "protocol": {"samples": int(len(samples)), "hq_threshold": "3 std", "std": std,
                       "reverse_kl": "KL(p_HQ || uniform over modes), nats"}}



def chance_modes(dataset: str, low: np.ndarray, high: np.ndarray, draws: int = 5,
                 seed: int = 0) -> list[dict]:
  """The protocol's scores of a generator that learned nothing but the data's extent:
  `draws` uniform clouds of VEEGAN_SAMPLES points over the box [low, high]. A row near
  these numbers measures no learning (a 25-mode grid is captured by chance)."""
  rng = np.random.default_rng(seed)
  low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
  return [mixture_modes(dataset, rng.uniform(low, high, (VEEGAN_SAMPLES, len(low))))
          for _ in range(draws)]

# ----------------------------------------------------------------------------- all metrics

IMAGE_METRICS = ("fid", "kid", "is", "pr", "dc")
ALL_METRICS = IMAGE_METRICS + ("modes",)
MODE_DATASETS = ("ring", "grid", "stacked_mnist")
STACKED_SAMPLES = 26_000  # PROTOCOLS.md section 2
CLASSIFIER_DATASETS = ("mnist5k", "mnist", "fashion_mnist", "kmnist")
# 'auto' during training stays cheap (FID: ~1 s on 10k samples; KID's 100 subsets alone cost
# ~5 s and pushed the default run's overhead to 11 %); after training it is everything.
AUTO_TRAINING_IMAGE_METRICS = ("fid",)


class FeatureNet:
  """features(images) -> [N, D] and logits(images) -> [N, C], plus a description."""

  def __init__(self, name: str, features, logits, info: dict):
    self.name, self.features, self.logits, self.info = name, features, logits, info


def _classifier_net(dataset: str, data_dir: str) -> FeatureNet:
  from aegan_jax.features import classifier as classifier_lib
  clf = classifier_lib.load(dataset, data_dir)
  return FeatureNet("lenet", clf.features, clf.logits, {
      "feature_network": f"LeNet domain classifier trained on {dataset}",
      "classifier_test_accuracy": clf.meta.get("test_accuracy"),
      "classifier_num_test": clf.meta.get("num_test")})


def _inception_net(path: str) -> FeatureNet:
  from aegan_jax.features import inception
  variables = inception.load_weights(path)
  model = inception.InceptionV3()
  apply = jax.jit(lambda x: model.apply(variables, x, return_logits=True))

  def run(images, which):
    out = [np.asarray(apply(images[i:i + 200])[which]) for i in range(0, len(images), 200)]
    return np.concatenate(out)
  return FeatureNet("inception", lambda x: run(x, 0), lambda x: run(x, 1), {
      "feature_network": f"InceptionV3 (FID weights) from {path}"})


def resolve_metrics(requested: str, dataset: str, data_dir: str, inception_weights: str,
                    during_training: bool = False) -> tuple[list[str], str]:
  """(metrics, note): the metric list for `requested` on `dataset`, or UserError if unfit.

  'auto' picks what fits and is available (a missing classifier leaves image metrics out,
  with the note saying how to add them); an explicit list must fit, or it is an error.
  """
  image_data = dataset not in MIXTURES
  has_features = bool(inception_weights) or (
      dataset in CLASSIFIER_DATASETS and _classifier_exists(dataset, data_dir))
  if requested.strip() == "auto":
    if dataset in MODE_DATASETS and dataset != "stacked_mnist":
      return ["modes"], ""
    if dataset == "stacked_mnist":
      digits = _stacked_digit_classifier(data_dir, missing_ok=True)
      return (["modes"], "") if digits else ([], _train_hint("mnist5k"))
    if has_features:
      return list(AUTO_TRAINING_IMAGE_METRICS if during_training else IMAGE_METRICS), ""
    return [], (_train_hint(dataset) if dataset in CLASSIFIER_DATASETS
                else f"image metrics on {dataset} need --inception_weights")
  metrics = [m.strip() for m in requested.split(",") if m.strip()]
  for m in metrics:
    if m not in ALL_METRICS:
      raise UserError(f"unknown metric {m!r} in --eval_metrics; choose from "
                      f"{', '.join(ALL_METRICS)} (or auto)")
  for m in metrics:
    if m == "modes" and dataset not in MODE_DATASETS:
      raise UserError(f"--eval_metrics=modes fits {', '.join(MODE_DATASETS)} (data with known "
                      f"modes), not {dataset!r}; use fid,kid,pr,dc there")
    if m in IMAGE_METRICS and not image_data:
      raise UserError(f"{m} measures images; {dataset!r} is 2-D points: use --eval_metrics=modes")
    if m in IMAGE_METRICS and dataset == "stacked_mnist" and not inception_weights:
      raise UserError(f"{m} on stacked_mnist needs --inception_weights (the domain classifier "
                      f"reads single digits); use --eval_metrics=modes")
    if m in IMAGE_METRICS and not has_features:
      if dataset in CLASSIFIER_DATASETS:
        raise UserError(f"{m} needs a feature network: {_train_hint(dataset)} "
                        f"(or pass --inception_weights)")
      raise UserError(f"{m} on {dataset!r} needs --inception_weights=FILE (see README: "
                      f"'FID with Inception features')")
  return metrics, ""


def _classifier_exists(dataset: str, data_dir: str) -> bool:
  from aegan_jax.features import classifier as classifier_lib
  return os.path.isdir(classifier_lib.default_dir(dataset, data_dir))


def _train_hint(dataset: str) -> str:
  return (f"no domain classifier for {dataset!r} yet; train it once with: "
          f"python -m scripts.train_classifier --dataset={dataset}")


def _stacked_digit_classifier(data_dir: str, missing_ok: bool = False):
  from aegan_jax.features import classifier as classifier_lib
  for source in ("mnist", "mnist5k"):
    if _classifier_exists(source, data_dir):
      return classifier_lib.load(source, data_dir)
  if missing_ok:
    return None
  raise UserError(f"modes on stacked_mnist need a digit classifier: {_train_hint('mnist5k')}")


class Evaluator:
  """Computes the chosen metrics for a (strategy, state); real-data statistics are cached."""

  def __init__(self, dataset, metrics: list[str], data_dir: str, num_samples: int,
               inception_weights: str = ""):
    self.dataset, self.metrics, self.num_samples = dataset, metrics, num_samples
    self.data_dir = data_dir
    self.net = None
    self._real = None
    if "kid" in metrics and num_samples < KID_SUBSET:
      raise UserError(f"kid uses subsets of {KID_SUBSET} samples, more than the "
                      f"{num_samples} asked for; raise --eval_samples/--num_samples to "
                      f"at least {KID_SUBSET}")
    if any(m in ("pr", "dc") for m in metrics) and num_samples < 10:
      raise UserError(f"pr and dc need k-nearest neighbours among at least 10 samples, got "
                      f"{num_samples}; raise --eval_samples/--num_samples")
    if any(m in IMAGE_METRICS for m in metrics):
      self.net = (_inception_net(inception_weights) if inception_weights
                  else _classifier_net(dataset.name, data_dir))
    self.digits = (_stacked_digit_classifier(data_dir)
                   if "modes" in metrics and dataset.name == "stacked_mnist" else None)
    self._generate = {}  # one compiled sampler per strategy, reused at every evaluation

  def _sample(self, strategy, state, num: int, seed: int) -> np.ndarray:
    if id(strategy) not in self._generate:
      self._generate[id(strategy)] = jax.jit(strategy.generate, static_argnums=2)
    return sample(strategy, state, num, seed, generate=self._generate[id(strategy)])

  def _real_features(self) -> np.ndarray:
    if self._real is None:  # the whole training split, once
      chunks = [self.net.features(np.asarray(c)) for c in self.dataset.train_chunks(2000)]
      self._real = np.concatenate(chunks)
    return self._real

  def __call__(self, strategy, state, seed: int = 0) -> tuple[dict, dict]:
    """(scalars, protocol): flat numbers for logs, and what each was measured with."""
    from aegan_jax.metrics.fid import fid
    from aegan_jax.metrics.inception_score import inception_score
    from aegan_jax.metrics.kid import kid
    from aegan_jax.metrics.precision_recall import density_coverage, precision_recall
    scalars, protocol = {}, {}
    name = self.dataset.name
    if "modes" in self.metrics and name in MIXTURES:
      r = mixture_modes(name, self._sample(strategy, state, VEEGAN_SAMPLES, seed))
      scalars.update(modes_captured=r["modes_captured"],
                     high_quality_percent=r["high_quality_percent"], reverse_kl=r["reverse_kl"])
      protocol["modes"] = {**r["protocol"], "num_modes": r["num_modes"], "counts": r["counts"]}
    if "modes" in self.metrics and name == "stacked_mnist":
      from aegan_jax.features import classifier as classifier_lib
      images = self._sample(strategy, state, STACKED_SAMPLES, seed)
      labels = classifier_lib.classify_channels(self.digits, images)
      r = modes_lib.count_modes_from_labels(labels, 1000)
      scalars.update(modes_captured=r["modes_captured"], reverse_kl=r["reverse_kl"])
      protocol["modes"] = {"samples": STACKED_SAMPLES, "num_modes": 1000,
                           "classifier": self.digits.meta.get("dataset"),
                           "classifier_test_accuracy": self.digits.meta.get("test_accuracy")}
    image_metrics = [k for k in self.metrics if k in IMAGE_METRICS]
    if image_metrics:
      fake = self._sample(strategy, state, self.num_samples, seed)
      fake_features = self.net.features(fake)
      real = self._real_features()
      tag = self.net.name
      if "fid" in image_metrics:
        scalars[f"fid_{tag}"] = fid(real, fake_features)
      if "kid" in image_metrics:
        mean, std = kid(real, fake_features, subset_size=KID_SUBSET, seed=seed)
        scalars[f"kid_{tag}"], scalars[f"kid_{tag}_std"] = mean, std
      if "is" in image_metrics:
        mean, std = inception_score(self.net.logits(fake))
        scalars[f"is_{tag}"], scalars[f"is_{tag}_std"] = mean, std
      # k-NN metrics compare equal-size sets: a seeded subset of the real features.
      subset = np.random.default_rng(seed).permutation(len(real))[:len(fake_features)]
      if "pr" in image_metrics:
        p, r = precision_recall(real[subset], fake_features, k=3)
        scalars[f"precision_{tag}"], scalars[f"recall_{tag}"] = p, r
      if "dc" in image_metrics:
        d, c = density_coverage(real[subset], fake_features, k=5)
        scalars[f"density_{tag}"], scalars[f"coverage_{tag}"] = d, c
      protocol["images"] = {**self.net.info, "generated_samples": int(len(fake_features)),
                            "real_samples": int(len(real)), "real_split": "train",
                            "pr_dc_real_samples": int(min(len(real), len(fake_features))),
                            "pr_k": 3, "dc_k": 5, "kid_subset_size": KID_SUBSET}
    protocol["seed"] = seed
    return scalars, protocol


KID_SUBSET = 1000
