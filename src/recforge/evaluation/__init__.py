"""recforge.evaluation."""
