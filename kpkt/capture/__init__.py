"""Capture points, the files they write, and the run's manifest."""
