"""recforge.split."""
