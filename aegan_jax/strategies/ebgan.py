"""ebgan: placeholder, being written."""

TECHNIQUES = frozenset()


def build(config, spec):
  raise NotImplementedError("ebgan")
