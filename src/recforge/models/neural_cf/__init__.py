"""Deep collaborative filtering on user x item interactions (torch, on the shared neural base).

One module per model family: :mod:`.autoencoders` (Mult-DAE, Mult-VAE), :mod:`.cdae` (CDAE),
:mod:`.rbm` (RBM) and :mod:`.cfnade` (CF-NADE) on the rating-distribution base of
:mod:`._ratings`. Every model is a :class:`~recforge.models.neural.NeuralModel` (seeded, one
training loop, safetensors weights) whose user is its history, scored in batches of CSR rows,
never from a dense user x item matrix. Models are registered by name and imported on first use
through the model catalogue, so importing this package does not import torch.
"""
