"""Random search near exhaustion: the last unevaluated architectures are still found."""

from __future__ import annotations

import numpy as np

from hwnas.search import get_space
from hwnas.search.strategies import RandomSearch


def test_random_search_finds_the_last_architectures_of_a_used_up_space():
    space = get_space("nb201")
    strategy = RandomSearch(space, 1, seed=0)
    every = list(space)
    left = set(every[:3])
    told = [a for a in every if a not in left]
    strategy.tell(told, np.zeros((len(told), 1)))
    found = set()
    for _ in range(3 * (RandomSearch.PATIENCE + 1)):
        (a,) = strategy.ask(1)
        if a not in strategy.archive_:
            found.add(a)
            strategy.tell([a], np.zeros((1, 1)))
    assert found == left


def test_far_from_exhaustion_random_search_is_plain_uniform_sampling():
    space = get_space("nb201")
    a, b = RandomSearch(space, 1, seed=5), np.random.default_rng(5)
    assert a.ask(50) == [space.sample(b) for _ in range(50)]
