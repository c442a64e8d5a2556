"""User-facing errors: bad configuration or data, reported without traceback."""


class UserError(ValueError):
  """A mistake in the user's input; its message names what to change."""


def without_gin_context(message):
  """`message` without the "In call to configurable ..." lines gin appends
  to an error raised inside a configurable (context, not news)."""
  return "\n".join(line for line in str(message).splitlines()
                   if not line.strip().startswith("In call to"))


def unwrapped_type(error):
  """The class of `error` itself, not gin's proxy subclass of it (gin
  re-raises errors from inside a configurable as a subclass with the call
  context appended)."""
  def is_proxy(cls):  # gin copies the name; its own __init__ tells.
    init = vars(cls).get("__init__")
    return "ExceptionProxy" in getattr(init, "__qualname__", "")
  return next(c for c in type(error).__mro__ if not is_proxy(c))
