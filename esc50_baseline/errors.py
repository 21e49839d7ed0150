"""The exceptions that carry a message for the user: the task scripts print them as one sentence."""


class UserError(Exception):
    """A mistake in the user's data, settings or environment, with a message that says what to do."""


class DamagedFile(Exception):
    """A cached file that exists but cannot be read back as what was written (truncated, overwritten)."""

    def __init__(self, path, problem):
        super().__init__(f"{path} is damaged ({problem})")
        self.path, self.problem = path, problem
