"""Deep collaborative filtering on the shared torch base (:mod:`recforge.models.neural`).

One module per family: ``ncf`` (GMF, MLP, NeuMF; He et al. 2017), ``autorec`` (I-AutoRec and
U-AutoRec; Sedhain et al. 2015). Nothing is imported here, so naming one model imports its own
family only (see :mod:`recforge.models._catalog`).
"""
