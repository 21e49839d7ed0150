"""The one exception type that means "the user can fix this": the task scripts print it as one sentence."""


class UserError(Exception):
    """A mistake in the user's data, settings or environment, with a message that says what to do."""
