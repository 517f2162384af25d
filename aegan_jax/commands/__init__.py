"""The command-line programs (absl flags): train, evaluate, sample, sweep.

Each module defines its flags on import and has `entry()`, the console script pip installs
(`aegan-train`, `aegan-evaluate`, `aegan-sample`, `aegan-sweep`); from the repository root the
same programs run as `python -m experiments.train` and `python -m scripts.{evaluate,sample,sweep}`.
"""
