"""Entry point for `python -m kpkt`."""

from kpkt.cli import entry

entry()
