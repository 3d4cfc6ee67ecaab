"""recforge.metrics."""
