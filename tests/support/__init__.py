"""Helpers shared by the test modules: databases, Temporal, fakes, factories, reliability stacks."""
