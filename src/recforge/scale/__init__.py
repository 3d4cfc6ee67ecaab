"""recforge.scale."""
