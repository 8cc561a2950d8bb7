"""Topology files: reading and checking the YAML into the specs of `kpkt/spec.py` (`load.py`).

Nothing here builds a network; `kpkt/build.py` does."""
