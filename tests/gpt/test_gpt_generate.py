"""Generation: the KV cache equals recomputation, cropping past block_size, seeded
determinism, greedy decoding, top-k / top-p semantics, sampling frequencies and stop
sequences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad
from gpt.generate import _until_stop, generate, sample_next, top_k_filter, top_p_filter
from gpt.kv_cache import KVCache
from gpt.model import GPT, GPTConfig

TINY = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)


def make_model(dtype="float64", seed=0, **overrides):
    model = GPT(GPTConfig(**{**TINY, **overrides}), generator=minigrad.Generator(seed))
    return model.to(dtype=dtype)


def prompt(n=5, seed=2):
    return np.random.default_rng(seed).integers(0, TINY["vocab_size"], size=n).tolist()


# -- the KV cache ------------------------------------------------------------------------
@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_kv_cache_logits_equal_full_recomputation(positions, device):
    """Prefill, then one token at a time, then a chunk of several: each position's logits
    match a forward pass over the whole sequence."""
    model = make_model(positions=positions).to(device)
    ids = np.random.default_rng(0).integers(0, 50, size=(2, 14))
    with minigrad.no_grad():
        full, _ = model(minigrad.tensor(ids, device=device))
        cache = KVCache(model.config.n_layer, model.config.block_size)
        pieces = []
        for lo, hi in [(0, 5), (5, 6), (6, 7), (7, 11), (11, 14)]:
            logits, _ = model(minigrad.tensor(ids[:, lo:hi], device=device), kv_cache=cache)
            pieces.append(logits.numpy())
    assert cache.length == 14
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full.numpy(), rtol=1e-10,
                               atol=1e-12)


def test_kv_cache_refuses_graphs_and_overflow():
    model = make_model()
    cache = KVCache(model.config.n_layer, model.config.block_size)
    with pytest.raises(RuntimeError, match="no_grad"):
        model(minigrad.tensor([[1, 2]]), kv_cache=cache)
    cache.reset()
    with minigrad.no_grad():
        model(minigrad.tensor([list(range(12))]), kv_cache=cache)
        with pytest.raises(ValueError, match="12 cached \\+ 5 new"):
            model(minigrad.tensor([list(range(5))]), kv_cache=cache)


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_cached_generation_equals_uncached_past_block_size(positions):
    """30 new tokens from a 16-token model: the context is cropped and recomputed, and the
    tokens (greedy and sampled) equal those of the path without a cache."""
    model = make_model(positions=positions)
    for kwargs in (dict(temperature=0), dict(temperature=1.5, generator=7)):
        cached = list(generate(model, prompt(), 30, use_cache=True, **kwargs))
        uncached = list(generate(model, prompt(), 30, use_cache=False, **kwargs))
        assert cached == uncached
        assert len(cached) == 30


def test_cached_generation_feeds_one_token_per_step_until_the_crop():
    model = make_model()
    fed = []
    model.register_forward_pre_hook(lambda module, inputs: fed.append(inputs[0].shape[1]))
    list(generate(model, prompt(5), 14, temperature=0))
    # prompt of 5, then 1 token a step up to 16 tokens, then the cropped window of 16
    assert fed == [5] + [1] * 11 + [16, 16]
    fed.clear()
    list(generate(model, prompt(5), 3, temperature=0, use_cache=False))
    assert fed == [5, 6, 7]


def test_greedy_follows_the_argmax_of_the_full_forward():
    model = make_model()
    tokens = prompt()
    out = list(generate(model, tokens, 6, temperature=0))
    for new in out:
        with minigrad.no_grad():
            logits, _ = model(minigrad.tensor([tokens]))
        assert new == int(np.argmax(logits.numpy()[0, -1]))
        tokens.append(new)


# -- sampling ---------------------------------------------------------------------------
def test_same_seed_same_tokens_and_generation_streams():
    model = make_model(dtype="float32")
    a = list(generate(model, prompt(), 12, temperature=1.0, generator=3))
    b = list(generate(model, prompt(), 12, temperature=1.0, generator=minigrad.Generator(3)))
    c = list(generate(model, prompt(), 12, temperature=1.0, generator=4))
    assert a == b
    assert a != c
    stream = generate(model, prompt(), 12, generator=3)
    assert next(stream) == a[0] and next(stream) == a[1]  # an iterator, token by token
    minigrad.manual_seed(5)
    d = list(generate(model, prompt(), 12))  # the default generator
    minigrad.manual_seed(5)
    assert list(generate(model, prompt(), 12)) == d


def test_model_mode_is_restored_after_each_step():
    model = make_model(dropout=0.1)
    stream = generate(model, prompt(), 3, temperature=0)
    next(stream)
    assert model.training


def test_top_k_filter_keeps_the_k_largest():
    logits = minigrad.tensor([[1.0, 5.0, 3.0, 3.0, -2.0], [0.0, 1.0, 2.0, 3.0, 4.0]])
    out = top_k_filter(logits, 2).numpy()
    np.testing.assert_array_equal(out[1], [-np.inf, -np.inf, -np.inf, 3.0, 4.0])
    np.testing.assert_array_equal(out[0], [-np.inf, 5.0, 3.0, 3.0, -np.inf])  # tie kept
    np.testing.assert_array_equal(top_k_filter(logits, 99).numpy(), logits.numpy())


@pytest.mark.parametrize("p, kept", [(0.3, 1), (0.5, 1), (0.6, 2), (0.79, 2), (0.81, 3),
                                     (0.96, 4), (1.0, 4)])
def test_top_p_filter_keeps_the_smallest_set_reaching_p(p, kept):
    probs = np.array([0.15, 0.5, 0.05, 0.3])
    logits = minigrad.tensor(np.log(probs))
    out = top_p_filter(logits, p).numpy()
    expected = np.argsort(-probs)[:kept]
    assert set(np.flatnonzero(np.isfinite(out))) == set(expected)


def test_sampling_frequencies_follow_the_filtered_softmax():
    logits = minigrad.tensor(np.log([0.1, 0.2, 0.3, 0.4]), dtype="float64")
    gen = minigrad.Generator(0)
    n = 4000
    draws = np.bincount([sample_next(logits, 1.0, generator=gen) for _ in range(n)],
                        minlength=4)
    np.testing.assert_allclose(draws / n, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    # temperature 0.5 squares the probabilities; top_k=2 keeps the two likeliest
    draws = np.bincount([sample_next(logits, 0.5, top_k=2, generator=gen)
                         for _ in range(n)], minlength=4)
    np.testing.assert_allclose(draws / n, [0, 0, 9 / 25, 16 / 25], atol=0.03)
    assert sample_next(logits, 0.0) == 3
    assert {sample_next(logits, 1.0, top_p=0.35, generator=gen) for _ in range(50)} == {3}



@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # to -inf
def test_a_tiny_temperature_samples_the_argmax():
    """1e-310 (subnormal) overflows logits / temperature to +-inf; the argmax must still
    win, as temperature -> 0 tends to greedy decoding (it used to pick token 0)."""
    for values in ([1.0, 2.0, 0.5], [-3.0, -2.0, -5.0]):
        logits = minigrad.tensor(values, dtype="float64")
        for top_p in (None, 0.5):
            draws = {sample_next(logits, 1e-310, top_p=top_p, generator=minigrad.Generator(s))
                     for s in range(10)}
            assert draws == {1}


def test_top_p_keeps_the_tokens_tied_with_the_last_kept_one():
    """p = 0.8 needs 0.5, 0.25 and one 0.125: both 0.125s stay (the documented tie rule)."""
    logits = minigrad.tensor(np.log([0.125, 0.5, 0.125, 0.25]))
    assert np.isfinite(top_p_filter(logits, 0.8).numpy()).all()
    assert np.isfinite(top_p_filter(logits, 0.7).numpy()).tolist() == [False, True, False, True]


def test_filtered_distribution_equals_hugging_face_warpers():
    """softmax(top_p(top_k(logits / T))) equals transformers' Temperature, TopK and TopP
    logits warpers on random rows (no ties, p off the cumulative boundaries)."""
    torch = pytest.importorskip("torch", reason="compares with transformers")
    warpers = pytest.importorskip("transformers.generation.logits_process",
                                  reason="compares with transformers")
    rng = np.random.default_rng(0)
    ids = torch.zeros((1, 1), dtype=torch.long)
    for _ in range(60):
        vocab = int(rng.integers(1, 40))
        row = rng.normal(0, rng.choice([0.3, 3.0]), vocab)
        row[rng.random(vocab) < 0.2] = -np.inf
        row[rng.integers(vocab)] = 0.0  # at least one finite logit
        temperature, top_k = float(rng.choice([0.05, 0.7, 1.0, 4.0])), int(rng.integers(1, 45))
        top_p = float(rng.uniform(0.01, 1.0))
        ours = top_p_filter(top_k_filter(minigrad.tensor(row) / temperature, top_k), top_p)
        theirs = torch.tensor(row)[None]
        for warper in (warpers.TemperatureLogitsWarper(temperature),
                       warpers.TopKLogitsWarper(top_k), warpers.TopPLogitsWarper(top_p)):
            theirs = warper(ids, theirs)
        np.testing.assert_allclose(ours.softmax(dim=-1).numpy(),
                                   theirs.softmax(dim=-1)[0].numpy(), rtol=1e-10, atol=1e-15)


# -- stop sequences -------------------------------------------------------------------
def test_generation_stops_at_a_stop_sequence_and_drops_it():
    model = make_model()
    free = list(generate(model, prompt(), 12, temperature=0))
    stop = free[4:6]
    first = next(i for i in range(len(free)) if free[i:i + 2] == stop)
    out = list(generate(model, prompt(), 12, temperature=0, stop=[[99, 98], stop]))
    assert out == free[:first]


@given(st.lists(st.integers(0, 2), max_size=12),
       st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=3), max_size=3))
def test_stop_filter_yields_the_stream_up_to_the_first_stop(stream, stops):
    end = next((i for i in range(1, len(stream) + 1)
                for s in stops if stream[:i][-len(s):] == s), None)
    if end is None:
        expected = stream
    else:
        matched = next(s for s in stops if stream[:end][-len(s):] == s)
        expected = stream[:end - len(matched)]
    assert list(_until_stop(iter(stream), stops)) == expected


def test_stop_tokens_are_held_back_until_resolved():
    """With stop [1, 2], a 1 is not yielded until the next token shows it is no stop."""
    seen = []

    def source():
        for t in (5, 1, 3, 1, 2, 9):
            seen.append(t)
            yield t

    out = _until_stop(source(), [[1, 2]])
    assert next(out) == 5 and seen == [5]
    assert next(out) == 1 and seen == [5, 1, 3]
    assert next(out) == 3
    assert list(out) == [] and seen == [5, 1, 3, 1, 2]


# -- arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(stop=[[]]), "stop sequences"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
])
def test_bad_arguments_raise_at_call_time(kwargs, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        generate(model, prompt(), **{"max_new_tokens": 3, **kwargs})


def test_prompt_forms():
    model = make_model()
    tokens = prompt()
    expected = list(generate(model, tokens, 4, temperature=0))
    assert list(generate(model, minigrad.tensor(tokens), 4, temperature=0)) == expected
    assert list(generate(model, minigrad.tensor([tokens]), 4, temperature=0)) == expected
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [], 4)
