"""Plain temperature sampling (drawn with numpy) follows softmax(logits / temperature)."""

from __future__ import annotations

import ctypes
import math
from typing import Any

import pytest

from nemo_server.llm.engines.llama_batch import Sampler


class _Lib:
    """The two llama.cpp calls the plain sampler makes, over fixed logits."""

    def __init__(self, logits: list[float]) -> None:
        self.row = (ctypes.c_float * len(logits))(*logits)

    def llama_vocab_n_tokens(self, vocab: Any) -> int:
        return len(self.row)

    def llama_get_logits_ith(self, ctx: Any, index: int) -> Any:
        return ctypes.cast(self.row, ctypes.POINTER(ctypes.c_float))


@pytest.mark.parametrize(("temperature", "expected"), [(1.0, 0.75), (0.5, 0.9)])
def test_draws_follow_the_tempered_softmax(temperature: float, expected: float) -> None:
    lib = _Lib([0.0, math.log(3.0), -1e9])  # p = 1/4, 3/4, 0 at temperature 1
    sampler = Sampler(lib, None, temperature=temperature, top_p=1.0, seed=7, grammar=None)
    draws = [sampler.sample(None, 0) for _ in range(4000)]
    assert 2 not in draws
    assert abs(draws.count(1) / len(draws) - expected) < 0.03
    again = Sampler(lib, None, temperature=temperature, top_p=1.0, seed=7, grammar=None)
    assert [again.sample(None, 0) for _ in range(50)] == draws[:50]  # a seed repeats
    assert list(lib.row)[1] == pytest.approx(math.log(3.0))  # the logits are not modified
