"""Shared test support: fixtures several test modules need (tests/support/fixtures.py). Data
factories live in tests/factories.py; the parties around the ACS in apps/threeds/simulator.
See docs/TESTING.md."""
