"""One exception type for problems a user can fix (bad input, bad config)."""


class UserError(Exception):
    """A problem with the input or configuration, reported as one line.

    ``subject`` names the file (or config key) at fault; ``reason`` says why.
    """

    def __init__(self, subject, reason):
        self.subject = str(subject)
        self.reason = str(reason)
        super().__init__(f"{self.subject}: {self.reason}")

    def __reduce__(self):  # picklable, so worker processes can raise it to their parent
        return (type(self), (self.subject, self.reason))
