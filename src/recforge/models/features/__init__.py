"""Click-prediction models with side features: factorization machines (``fm``), Wide & Deep
(``wide_deep``), DeepFM (``deepfm``) and DCN-v2 (``dcn``); the two-tower retrieval model
(``two_tower``), its ranking and multitask models (``ranking``) and YouTube DNN
(``youtube_dnn``); on the shared
:class:`~recforge.models.features.base.FeatureRecommender` and the shared embedding layer
(``embedding``). Importing this package imports none of them (and not torch); the registry
imports the module of the model it needs."""
