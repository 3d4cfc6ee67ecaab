"""Where each registered model lives, so that naming or loading one imports its family only.

Loading a saved k-NN model must not import torch; the registry therefore maps each model name
to the module that defines (and registers) it, and imports that module on first use. A test
checks that every registered model is listed here under its own module.
"""

MODEL_MODULES: dict[str, str] = {
    # baselines
    "Random": "recforge.models.baseline",
    "GlobalMean": "recforge.models.baseline",
    "BaselineOnly": "recforge.models.baseline",
    "MostPopular": "recforge.models.baseline",
    "RandomRanker": "recforge.models.baseline",
    # content
    "ContentKNN": "recforge.models.content",
    # neighbourhood
    "KNNBasic": "recforge.models.neighborhood.knn",
    "KNNWithMeans": "recforge.models.neighborhood.knn",
    "KNNWithZScore": "recforge.models.neighborhood.knn",
    "KNNBaseline": "recforge.models.neighborhood.knn",
    "SlopeOne": "recforge.models.neighborhood.slope_one",
    "CoClustering": "recforge.models.neighborhood.co_clustering",
    "UserKNNTopN": "recforge.models.neighborhood.topn",
    "ItemKNNTopN": "recforge.models.neighborhood.topn",
    # factorization
    "PureSVD": "recforge.models.factorization.puresvd",
    "timeSVDpp": "recforge.models.factorization.time_svdpp",
    "SVDpp": "recforge.models.factorization.svdpp",
    "NMF": "recforge.models.factorization.nmf",
    "NSVD1": "recforge.models.factorization.asymmetric",
    "SVD": "recforge.models.factorization.svd",
    "PMF": "recforge.models.factorization.svd",
    # linear item-item (implicit feedback)
    "EASE": "recforge.models.linear.ease",
    "SLIM": "recforge.models.linear.slim",
    # item embeddings (implicit feedback)
    "item2vec": "recforge.models.item2vec",
    "MetaProd2Vec": "recforge.models.meta_prod2vec",
    "BPR": "recforge.models.factorization.bpr",
    "LMF": "recforge.models.factorization.lmf",
    "ALS": "recforge.models.factorization.als",
    # deep collaborative filtering (torch)
    "RBM": "recforge.models.neural_cf.rbm",
    "CFNADE": "recforge.models.neural_cf.cfnade",
    # click prediction with side features
    "FM": "recforge.models.features.fm",
    "DeepFM": "recforge.models.features.deepfm",
    "WideDeep": "recforge.models.features.wide_deep",
    "DCNv2": "recforge.models.features.dcn",
    "TwoTower": "recforge.models.features.two_tower",
    "TwoTowerRanking": "recforge.models.features.ranking",
    "TwoTowerMultitask": "recforge.models.features.ranking",
    "YouTubeDNN": "recforge.models.features.youtube_dnn",
    # wrappers
    "SurpriseAlgorithm": "recforge.models.surprise_wrapper",
    # sessions
    "SPop": "recforge.models.session.baselines",
    "MarkovChain": "recforge.models.session.baselines",
    "ItemKNNSession": "recforge.models.session.baselines",
    "SKNN": "recforge.models.session.baselines",
    "VSKNN": "recforge.models.session.baselines",
    "GRU4Rec": "recforge.models.session.gru4rec",
    "SASRec": "recforge.models.session.sasrec",
    # deep collaborative filtering (torch)
    "MultDAE": "recforge.models.neural_cf.autoencoders",
    "MultVAE": "recforge.models.neural_cf.autoencoders",
    "CDAE": "recforge.models.neural_cf.cdae",
    "GMF": "recforge.models.neural_cf.ncf",
    "MLP": "recforge.models.neural_cf.ncf",
    "NeuMF": "recforge.models.neural_cf.ncf",
    "IAutoRec": "recforge.models.neural_cf.autorec",
    "UAutoRec": "recforge.models.neural_cf.autorec",
}
