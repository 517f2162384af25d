"""Helper for tests that need a fresh interpreter: `python -m tests._run_code 'CODE'`."""

import sys

if __name__ == "__main__":
  exec(sys.argv[1])  # noqa: S102 - test-only helper, the code comes from the test itself
