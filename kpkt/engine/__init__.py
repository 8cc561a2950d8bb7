"""The virtual clock, the event scheduler and the seeded id generators."""
