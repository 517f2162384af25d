"""The one exception type for mistakes a user can fix.

Entry points catch UserError and print its message as a single line on stderr with
exit status 2; everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """Bad input: the message names the problem and the fix."""
