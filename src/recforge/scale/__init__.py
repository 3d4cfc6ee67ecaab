"""Scale-out: the same models, data and metrics when one machine or one process is not enough."""
