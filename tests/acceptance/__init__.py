"""Acceptance tests: real processes killed with SIGKILL, recovered, and checked by invariant."""
