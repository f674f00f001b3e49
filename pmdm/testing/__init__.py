"""Public helpers for testing code built on pmdm: hypothesis profiles and strategies."""
