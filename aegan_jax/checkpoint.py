"""Orbax checkpoints of the TrainState, guarded by the configuration that produced them.

Each checkpoint holds two items: 'state' (the TrainState pytree) and 'config' (JSON). A run
resumes only from a checkpoint whose configuration matches its own (run-control flags such
as --steps may differ), so a workdir is never overwritten by a different experiment; an
unreadable checkpoint is reported and left on disk untouched.
"""

import os
import shutil
import zlib
from typing import Any, Optional

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from aegan_jax import config as config_lib
from aegan_jax.errors import UserError


CORRUPT_DIR = "corrupt_checkpoints"


class CorruptCheckpoint(UserError):
  """A checkpoint whose arrays differ from the checksums recorded when it was saved."""


def checksums(state) -> Optional[dict[str, int]]:
  """CRC-32 of every array of `state` by its tree path, or None where this process does not
  hold every array whole (a multi-process run: not verified)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    if isinstance(leaf, jax.Array):
      if not leaf.is_fully_addressable:
        return None
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    out[jax.tree_util.keystr(path)] = zlib.crc32(np.ascontiguousarray(np.asarray(leaf)).data)
  return out


def _keep_latest(n: int) -> dict[str, Any]:
  """Keep the newest n checkpoints: orbax's preservation policy where it has one (max_to_keep
  is deprecated there), max_to_keep on the older versions pyproject.toml allows."""
  policies = getattr(ocp, "checkpoint_managers", None)
  if policies is not None and hasattr(policies, "LatestN"):
    return {"preservation_policy": policies.LatestN(n=n)}
  return {"max_to_keep": n}


class Checkpointer:

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.keep = keep
    self._manager = None

  @property
  def manager(self) -> ocp.CheckpointManager:
    # Opened (and the directory created) at first use, so that a run refused after the
    # workdir check (a bad flag for the data, a batch too large) leaves no empty folder.
    if self._manager is None:
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=True,
                                               **_keep_latest(self.keep)),
          item_names=("state", "config", "checksums"))
    return self._manager

  def latest_step(self) -> Optional[int]:
    if self._manager is None and not os.path.isdir(self.directory):
      return None
    return self.manager.latest_step()

  def saved_config(self, step: int) -> dict[str, Any]:
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
      return dict(restored["config"])
    except Exception as e:  # noqa: BLE001 - any failure to read means an unusable checkpoint
      raise self._unreadable(step, e) from None

  def check_compatible(self, step: int, config: config_lib.Config) -> None:
    saved = self.saved_config(step)
    diff = config_lib.incompatible_fields(saved, config)
    if diff:
      shown = ", ".join(f"--{k}={saved.get(k, '<unset>')!s} (now {getattr(config, k)!s})"
                        for k in diff[:4])
      raise UserError(
          f"{os.path.dirname(self.directory)} holds a checkpoint (step {step}) of another "
          f"configuration: {shown}; left untouched: use a new --workdir, or repeat the "
          f"saved flags to resume (they are in {os.path.dirname(self.directory)}/flags.txt)")

  def restore_verified(self, step: int, abstract_state) -> tuple[Any, int]:
    """(state, its step): checkpoint `step`, or the newest earlier one that verifies, each
    that fails moved aside (kept) and named in the log; UserError if none is left."""
    for candidate in sorted((s for s in self.manager.all_steps() if s <= step), reverse=True):
      try:
        return self.restore(candidate, abstract_state), candidate
      except CorruptCheckpoint as e:
        kept = self._move_aside(candidate)
        logging.warning("%s; moved to %s (kept); trying the previous checkpoint.", e, kept)
    raise UserError(f"no checkpoint in {self.directory} verifies (the corrupt ones are in "
                    f"{os.path.join(os.path.dirname(self.directory), CORRUPT_DIR)}); use a new "
                    f"--workdir to start over")

  def _move_aside(self, step: int) -> str:
    self.wait()
    target_dir = os.path.join(os.path.dirname(self.directory), CORRUPT_DIR)
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, str(step))
    suffix = 0
    while os.path.exists(target):
      suffix += 1
      target = os.path.join(target_dir, f"{step}.{suffix}")
    shutil.move(os.path.join(self.directory, str(step)), target)
    self.manager.reload()
    return target

  def restore(self, step: int, abstract_state):
    """Checkpoint `step`'s state, its arrays checked against their saved checksums
    (CorruptCheckpoint if one differs; checkpoints saved without checksums are not checked)."""
    try:
      restored = self.manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      state = restored["state"]
    except Exception as e:  # noqa: BLE001
      if "tree structures do not match" in str(e):  # orbax's words for another state layout
        raise UserError(
            f"checkpoint step {step} in {self.directory} holds a training state of another "
            f"layout than this version of aegan_jax builds (written by another version, whose "
            f"networks or optimizer states differ); it was left as is: resume it with the "
            f"version that wrote it, or use a new --workdir") from None
      raise self._unreadable(step, e) from None
    self._verify(step, state)
    return state

  def _verify(self, step: int, state) -> None:
    if not os.path.isdir(os.path.join(self.directory, str(step), "checksums")):
      return  # saved before checksums were recorded
    try:
      saved = self.manager.restore(
          step, args=ocp.args.Composite(checksums=ocp.args.JsonRestore()))["checksums"]
    except Exception as e:  # noqa: BLE001
      raise CorruptCheckpoint(f"checkpoint step {step} in {self.directory} fails verification "
                              f"(its checksums cannot be read: {type(e).__name__})") from None
    now = checksums(state)
    if now is None or saved.get("arrays") is None:
      return
    bad = [k for k, v in saved["arrays"].items() if now.get(k) != v]
    if bad or set(now) != set(saved["arrays"]):
      what = f"array {bad[0]} differs from its checksum" if bad else "its arrays differ"
      raise CorruptCheckpoint(f"checkpoint step {step} in {self.directory} fails "
                              f"verification ({what})")

  def save(self, step: int, state, config: config_lib.Config, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict()),
        checksums=ocp.args.JsonSave({"algorithm": "crc32", "arrays": checksums(state)})),
        force=force)

  def wait(self) -> None:
    if self._manager is not None:
      self._manager.wait_until_finished()

  def close(self) -> None:
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()

  def _unreadable(self, step: int, error: Exception) -> UserError:
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return UserError(
        f"checkpoint step {step} in {self.directory} cannot be read ({reason}); it was left as "
        f"is: move {os.path.join(self.directory, str(step))} aside to resume from an earlier "
        f"checkpoint, or use a new --workdir")

