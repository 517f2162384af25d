"""Orbax checkpoints of the TrainState, guarded by the configuration that produced them.

Each checkpoint holds two items: 'state' (the TrainState pytree) and 'config' (JSON). A run
resumes only from a checkpoint whose configuration matches its own (run-control flags such
as --steps may differ), so a workdir is never overwritten by a different experiment; an
unreadable checkpoint is reported and left on disk untouched.
"""

import os
from typing import Any, Optional

import orbax.checkpoint as ocp

from aegan_jax import config as config_lib
from aegan_jax.errors import UserError


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
          options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True,
                                               enable_async_checkpointing=True),
          item_names=("state", "config"))
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

  def restore(self, step: int, abstract_state):
    try:
      restored = self.manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
      return restored["state"]
    except Exception as e:  # noqa: BLE001
      if "tree structures do not match" in str(e):  # orbax's words for another state layout
        raise UserError(
            f"checkpoint step {step} in {self.directory} holds a training state of another "
            f"layout than this version of aegan_jax builds (written by another version, whose "
            f"networks or optimizer states differ); it was left as is: resume it with the "
            f"version that wrote it, or use a new --workdir") from None
      raise self._unreadable(step, e) from None

  def save(self, step: int, state, config: config_lib.Config, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict())),
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

