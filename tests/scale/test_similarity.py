"""Item-item similarity on the cluster equals ItemKNNTopN's pruned similarity on one machine."""

import numpy as np
import pytest

from recforge.data.synthetic import generate_ratings
from recforge.models.neighborhood.topn import ItemKNNTopN, top_neighbors
from recforge.scale.spark import item_knn_model, to_spark


@pytest.fixture(scope="module")
def data():
    return generate_ratings(n_users=150, n_items=120, n_ratings=3000, seed=2).interactions


@pytest.fixture(scope="module")
def frame(spark, data):
    return to_spark(spark, data)


@pytest.mark.parametrize("sim,min_support", [("cosine", 1), ("jaccard", 3)])
def test_distributed_similarity_equals_single_machine(frame, data, sim, min_support):
    local = ItemKNNTopN(k=15, sim=sim, neighbors=10, min_support=min_support).fit(data)
    dist = item_knn_model(frame, k=15, sim=sim, neighbors=10, min_support=min_support)
    a, b = local.item_similarity_, dist.item_similarity_
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
    assert dist.rating_top_ == local.rating_top_
    users = data.user_map.raw
    ra = local.recommend(users=users, k=10, history=data)
    rb = dist.recommend(users=users, k=10, history=data)
    np.testing.assert_array_equal(ra.items, rb.items)


def test_top_neighbors_keeps_nonzero_ties_to_lower_index():
    """Row 0: 0.5 at columns 2 and 3 tie (2 wins), zero never beats -0.25."""
    sim = np.array([[0.0, -0.25, 0.5, 0.5, 0.0],
                    [0.25, 0.0, 0.0, 0.0, 0.0]])
    m = top_neighbors(sim, 3).toarray()
    np.testing.assert_array_equal(m, [[0.0, -0.25, 0.5, 0.5, 0.0], [0.25, 0, 0, 0, 0]])
    m2 = top_neighbors(sim, 1).toarray()
    np.testing.assert_array_equal(m2[0], [0, 0, 0.5, 0, 0])


def test_neighbors_parameter_is_checked(data):
    with pytest.raises(ValueError, match="neighbors"):
        ItemKNNTopN(neighbors=0).fit(data)
