"""Evaluation protocols: what to sample, which metric fits which dataset, and the record.

Each result carries its protocol next to the number (sample counts, seed, geometry or
feature network), so a figure can be set beside a published one only when they match.
"""

import os

import jax
import numpy as np

from aegan_jax.errors import UserError
from aegan_jax.metrics import modes as modes_lib

# The 2-D benchmarks' geometry (VEEGAN protocol; docs/protocols.md section 1).
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

IMAGE_METRICS = ("fid", "kid", "is", "pr", "dc", "classes")
ALL_METRICS = IMAGE_METRICS + ("modes",)
# What 'auto' measures after training: everything but the Inception score, whose reading on a
# domain classifier's 10 classes says little that the class histogram ("classes") does not.
AUTO_FINAL_IMAGE_METRICS = ("fid", "kid", "pr", "dc", "classes")
MODE_DATASETS = ("ring", "grid", "stacked_mnist")
STACKED_SAMPLES = 26_000  # docs/protocols.md section 2
CLASSIFIER_DATASETS = ("mnist5k", "mnist", "fashion_mnist", "kmnist")
# 'auto' during training stays cheap (FID: ~1 s on 10k samples; KID's 100 subsets alone cost
# ~5 s and pushed the default run's overhead to 11 %); after training it is everything.
AUTO_TRAINING_IMAGE_METRICS = ("fid",)


class FeatureNet:
  """features(images) -> [N, D] and logits(images) -> [N, C], plus a description."""

  def __init__(self, name: str, features, logits, info: dict):
    self.name, self.features, self.logits, self.info = name, features, logits, info


def _classifier_net(dataset: str, data_dir: str, classifier_steps: int | None = None
                    ) -> FeatureNet:
  clf = _domain_classifier(dataset, data_dir, classifier_steps)
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

  'auto' picks what fits and is available; an explicit list must fit, or it is an error. A
  dataset with a domain classifier always has image metrics: a missing classifier is trained
  when first needed (`_domain_classifier`), except in a multi-process run, where it must be
  trained beforehand (the note says how).
  """
  image_data = dataset not in MIXTURES
  has_features = bool(inception_weights) or (
      dataset in CLASSIFIER_DATASETS and _classifier_available(dataset, data_dir))
  if requested.strip() == "auto":
    if dataset in MODE_DATASETS and dataset != "stacked_mnist":
      return ["modes"], ""
    if dataset == "stacked_mnist":
      digits = _stacked_digit_classifier(data_dir, missing_ok=True)
      return (["modes"], "") if digits else ([], _train_hint("mnist5k"))
    if has_features:
      chosen = AUTO_TRAINING_IMAGE_METRICS if during_training else AUTO_FINAL_IMAGE_METRICS
      if inception_weights:  # ImageNet classes are not the dataset's classes
        chosen = tuple(m for m in chosen if m != "classes")
      return list(chosen), ""
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
    if m == "classes" and dataset not in CLASSIFIER_DATASETS:
      raise UserError(f"classes counts the samples of each class with a domain classifier, "
                      f"which {dataset!r} lacks; it fits {', '.join(CLASSIFIER_DATASETS)}")
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
  return classifier_lib.is_complete(classifier_lib.default_dir(dataset, data_dir))


def _classifier_available(dataset: str, data_dir: str) -> bool:
  """Saved, or trainable here (one process: several would each train and race to save)."""
  return _classifier_exists(dataset, data_dir) or jax.process_count() == 1


def _domain_classifier(dataset: str, data_dir: str, steps: int | None = None):
  """The saved classifier of `dataset`, trained first (progress in the log) if there is none."""
  from absl import logging
  from aegan_jax.features import classifier as classifier_lib
  if jax.process_count() > 1 and not _classifier_exists(dataset, data_dir):
    raise UserError(_train_hint(dataset) + " (a multi-process run does not train it itself)")
  return classifier_lib.ensure(dataset, data_dir, steps=steps, log=logging.info)


def _train_hint(dataset: str) -> str:
  return (f"no domain classifier for {dataset!r} yet; train it once with: "
          f"python -m scripts.train_classifier --dataset={dataset}")


def _stacked_digit_classifier(data_dir: str, missing_ok: bool = False,
                              steps: int | None = None):
  """The digit classifier of Stacked MNIST's channels: mnist's if saved, else mnist5k's
  (trained first if missing and this is a single-process run)."""
  from aegan_jax.features import classifier as classifier_lib
  for source in ("mnist", "mnist5k"):
    if _classifier_exists(source, data_dir):
      return classifier_lib.load(source, data_dir)
  if _classifier_available("mnist5k", data_dir):
    return True if missing_ok else _domain_classifier("mnist5k", data_dir, steps)
  if missing_ok:
    return None
  raise UserError(f"modes on stacked_mnist need a digit classifier: {_train_hint('mnist5k')}")


class Evaluator:
  """Computes the chosen metrics for a (strategy, state); real-data statistics are cached."""

  def __init__(self, dataset, metrics: list[str], data_dir: str, num_samples: int,
               inception_weights: str = "", classifier_steps: int | None = None,
               final_metrics: list[str] | None = None):
    """final_metrics: what a call with final=True measures (default: `metrics`), e.g. the
    full set at the end of training where the periodic evaluations stay cheap."""
    self.dataset, self.metrics, self.num_samples = dataset, metrics, num_samples
    self.final_metrics = final_metrics or metrics
    metrics = list(dict.fromkeys(metrics + self.final_metrics))  # everything any call needs
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
    if any(m in IMAGE_METRICS and m != "classes" for m in metrics):
      self.net = (_inception_net(inception_weights) if inception_weights
                  else _classifier_net(dataset.name, data_dir, classifier_steps))
    # The class histogram reads the domain classifier's labels, whatever the feature network.
    self.labeller = (_domain_classifier(dataset.name, data_dir, classifier_steps).logits
                     if "classes" in metrics else None)
    self.digits = (_stacked_digit_classifier(data_dir, steps=classifier_steps)
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

  def __call__(self, strategy, state, seed: int = 0, final: bool = False) -> tuple[dict, dict]:
    """(scalars, protocol): flat numbers for logs, and what each was measured with."""
    metrics = self.final_metrics if final else self.metrics
    from aegan_jax.metrics.fid import fid
    from aegan_jax.metrics.inception_score import inception_score
    from aegan_jax.metrics.kid import kid
    from aegan_jax.metrics.precision_recall import density_coverage, precision_recall
    scalars, protocol = {}, {}
    name = self.dataset.name
    if "modes" in metrics and name in MIXTURES:
      r = mixture_modes(name, self._sample(strategy, state, VEEGAN_SAMPLES, seed))
      scalars.update(modes_captured=r["modes_captured"],
                     high_quality_percent=r["high_quality_percent"], reverse_kl=r["reverse_kl"])
      protocol["modes"] = {**r["protocol"], "num_modes": r["num_modes"], "counts": r["counts"]}
    if "modes" in metrics and name == "stacked_mnist":
      from aegan_jax.features import classifier as classifier_lib
      images = self._sample(strategy, state, STACKED_SAMPLES, seed)
      labels = classifier_lib.classify_channels(self.digits, images)
      r = modes_lib.count_modes_from_labels(labels, 1000)
      scalars.update(modes_captured=r["modes_captured"], reverse_kl=r["reverse_kl"])
      protocol["modes"] = {"samples": STACKED_SAMPLES, "num_modes": 1000,
                           "classifier": self.digits.meta.get("dataset"),
                           "classifier_test_accuracy": self.digits.meta.get("test_accuracy")}
    image_metrics = [k for k in metrics if k in IMAGE_METRICS]
    if image_metrics:
      fake = self._sample(strategy, state, self.num_samples, seed)
    if "classes" in image_metrics:
      counts = class_counts(self.labeller(fake))
      scalars["min_class_share"] = float(counts.min() / counts.sum())
      scalars["max_class_share"] = float(counts.max() / counts.sum())
      protocol["classes"] = {"counts": counts.tolist(), "samples": int(counts.sum()),
                             "classifier": f"LeNet domain classifier trained on {name}"}
    image_metrics = [k for k in image_metrics if k != "classes"]
    if image_metrics:
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


def class_counts(logits: np.ndarray) -> np.ndarray:
  """How many samples the classifier puts in each class: logits [N, C] -> [C] ints."""
  logits = np.asarray(logits)
  return np.bincount(logits.argmax(axis=1), minlength=logits.shape[1])
