"""Reliability tests: real processes on loopback (Temporal dev server, the worker), killed and restarted.

The stacks, drivers and checks they share live in tests/support/ (processes.py, stack.py, plans.py,
drivers.py, checks.py).
"""
