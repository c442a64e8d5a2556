"""User-facing errors: bad configuration or data, reported without traceback."""


class UserError(ValueError):
  """A mistake in the user's input; its message names what to change."""
