"""The seeded simulation of issue 5: a random folder, random operations, faults and crashes,
`syncd run` as a real subprocess, and an oracle that demands an exact mirror.

Run it with ``python -m tests.sim --seeds N --profile P`` (see docs/RELIABILITY.md); the
bounded pytest entry is tests/sim/test_sim.py.
"""
