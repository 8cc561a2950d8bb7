"""The exceptions kpkt raises for problems the user can fix (exit status 2)."""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class KpktError(Exception):
    """A problem with the user's input: reported as one line per problem, exit status 2."""

    def __init__(self, problems: str | list[str]):
        listed = [problems] if isinstance(problems, str) else problems
        self.problems = [one_line(problem) for problem in listed]
        super().__init__("\n".join(self.problems))


class TopologyError(KpktError):
    """A topology file that cannot be loaded: each problem names the file and the YAML path."""


def one_line(text: str) -> str:
    """`text` as one printable line: line breaks and other control characters a quoted value
    brings are shown escaped (`\\n`, `\\x1b`), never sent to the terminal."""
    return _UNPRINTABLE.sub(lambda found: repr(found[0])[1:-1], text)
