"""Topology files: the spec dataclasses, the YAML loader and the network builder."""
