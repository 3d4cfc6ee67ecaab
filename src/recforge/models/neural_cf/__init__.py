"""Deep collaborative filtering in torch: one module per model family.

Every model here is a :class:`~recforge.models.neural.NeuralModel` (seeded, one training loop,
safetensors weights) whose user is its history: rows are scored from their interactions
alone, in batches of CSR rows, never from a dense user x item matrix.
"""
