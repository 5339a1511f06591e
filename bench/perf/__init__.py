"""Performance checks that need a large generated results store (not run by the test suite)."""
