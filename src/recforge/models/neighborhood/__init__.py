"""Neighbourhood collaborative filtering: k-NN (four Surprise variants), similarities, Slope One,
Co-Clustering and course-style top-N neighbourhood recommenders."""

from .co_clustering import CoClustering
from .knn import KNNBaseline, KNNBasic, KNNWithMeans, KNNWithZScore, als_baselines
from .similarities import SIMILARITIES, similarity_matrix, similarity_nbytes, similarity_rows
from .slope_one import SlopeOne
from .topn import ItemKNNTopN, UserKNNTopN

__all__ = ["CoClustering", "KNNBaseline", "KNNBasic", "KNNWithMeans", "KNNWithZScore",
           "ItemKNNTopN", "SIMILARITIES", "SlopeOne", "UserKNNTopN", "als_baselines", "similarity_matrix", "similarity_nbytes",
           "similarity_rows"]
