import inspect

import torch

from emovec.models.kvcache import cache_argument, cache_in, cache_of
from tests.builders import encode


def test_cache_travels_under_the_name_the_installed_transformers_uses(tiny_llama):
    enc = encode(tiny_llama, ["hello there", "a longer prompt here"])
    with torch.inference_mode():
        first = tiny_llama.model(**enc, use_cache=True)
        cache = cache_of(first)
        assert cache is not None and int(cache.get_seq_length()) == enc["input_ids"].shape[1]
        arg = cache_argument(tiny_llama.model, cache)
        (name,) = arg
        assert name in inspect.signature(type(tiny_llama.model).forward).parameters
        step = torch.ones(2, 1, dtype=torch.long)
        mask = torch.cat([enc["attention_mask"], torch.ones(2, 1, dtype=torch.long)], 1)
        nxt = tiny_llama.model(input_ids=step, attention_mask=mask, use_cache=True, **arg)
    assert int(cache_of(nxt).get_seq_length()) == enc["input_ids"].shape[1] + 1
    assert cache_in({name: cache}) is cache and cache_in({}) is None
