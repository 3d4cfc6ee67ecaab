"""recforge.serving."""
