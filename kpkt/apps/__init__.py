"""Applications that run on a namespace's stack: the traffic steps of a topology."""
