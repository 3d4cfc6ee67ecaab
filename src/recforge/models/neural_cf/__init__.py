"""Deep collaborative filtering on user x item interactions (torch, on the shared neural base).

One module per model family: :mod:`.autoencoders` (Mult-DAE, Mult-VAE), :mod:`.cdae` (CDAE),
:mod:`.ncf` (GMF, MLP, NeuMF; He et al. 2017), :mod:`.autorec` (I-AutoRec, U-AutoRec; Sedhain
et al. 2015), :mod:`.rbm` (RBM) and :mod:`.cfnade` (CF-NADE) on the rating-distribution base of
:mod:`._ratings`. Every model is a :class:`~recforge.models.neural.NeuralModel` (seeded, one
training loop, safetensors weights). Models are registered by name and imported on first use
through the model catalogue, so importing this package does not import torch.
"""
