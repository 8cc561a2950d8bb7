"""The exceptions kpkt raises for problems the user can fix (exit status 2)."""

from __future__ import annotations


class KpktError(Exception):
    """A problem with the user's input: reported as one line per problem, exit status 2."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class TopologyError(KpktError):
    """A topology file that cannot be loaded: each problem names the file and the YAML path."""
