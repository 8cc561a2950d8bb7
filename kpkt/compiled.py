"""Functions generated for a hot path: the source is written for the data at hand (a flow
cache recording, a replayed run of capture points), with its constants bound as globals, so
the function runs straight through what that data says, without looking it up."""

from __future__ import annotations


class Names(dict):
    """The constants of a generated function's source, by the names the source calls them."""

    def bind(self, value, prefix: str) -> str:
        """A name for `value` in the source."""
        name = f"{prefix}{len(self)}"
        self[name] = value
        return name

    def function(self, lines: list[str]):
        """The function `lines` define (`def name(...):` first), these names its globals."""
        scope = dict(self)  # a plain dict: the interpreter's fast global lookups need one
        exec("\n".join(lines), scope)  # noqa: S102 -- source written by kpkt, from its own data
        return scope[lines[0].split()[1].split("(")[0]]
