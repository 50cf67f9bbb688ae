"""Token generation: one token at a time from a GPT, streaming (`generate`), each drawn
from the last position's logits by `sample_next`.

Each step takes the logits of the last position, divides them by the temperature, keeps
the top-k tokens and/or the smallest set of tokens holding top-p of the probability mass
(nucleus sampling, Holtzman et al. 2019), and samples from what is left (greedy argmax
when temperature == 0). Sampling happens on the generator's device (the host by default):
one explicit transfer of V logits per token, which streaming needs anyway to hand the
token to the caller.

With `use_cache=True` a `KVCache` holds the keys and values of earlier positions, so a
step runs the model on the new token only. Once the sequence outgrows block_size the
context is cropped to its last block_size tokens, which shifts every position, so from
then on each step recomputes the cropped window, exactly as the uncached path does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import minigrad
from gpt.kv_cache import KVCache


def generate(model, ids, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator=None,
             stop: Sequence[Sequence[int]] | None = None,
             use_cache: bool = True) -> Iterator[int]:
    """Yield up to `max_new_tokens` new token ids continuing `ids` (a list of ints, a 1-D
    tensor or a (1, T) tensor).

    generator: a `minigrad.Generator` or an int seed (same seed, same tokens); None uses
    the CPU's default generator (seeded by `minigrad.manual_seed`).
    stop: token-id sequences; generation ends when the output ends with one of them. The
    stop sequence itself is not yielded, and tokens that might begin one are held back
    until they are known not to.
    """
    prompt = _prompt_list(ids)
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    if not 0 <= temperature < math.inf:  # NaN fails too
        raise ValueError(f"generate: temperature must be finite and >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
    stops = [list(s) for s in (stop or [])]
    if any(not s for s in stops):
        raise ValueError("generate: stop sequences must not be empty")
    if generator is None:
        generator = minigrad.default_generator()
    elif not isinstance(generator, minigrad.Generator):
        generator = minigrad.Generator(generator)
    cache = KVCache(model.config.n_layer, model.config.block_size) if use_cache else None
    tokens = _sampled_tokens(model, prompt, max_new_tokens, cache,
                             lambda logits: sample_next(logits, temperature, top_k, top_p,
                                                        generator))
    return _until_stop(tokens, stops)


def _prompt_list(ids) -> list[int]:
    if isinstance(ids, minigrad.Tensor):
        if ids.ndim == 2 and ids.shape[0] == 1:
            ids = ids[0]
        if ids.ndim != 1:
            raise ValueError(f"generate: ids must be one sequence, (T,) or (1, T), got shape "
                             f"{ids.shape}")
        ids = ids.tolist()
    prompt = [int(t) for t in ids]
    if not prompt:
        raise ValueError("generate: the prompt must hold at least one token")
    return prompt


def _sampled_tokens(model, prompt: list[int], max_new_tokens: int, cache, pick):
    """The stream of sampled tokens; `pick` maps last-position logits (V,) to a token."""
    tokens = list(prompt)
    for _ in range(max_new_tokens):
        token = pick(next_token_logits(model, tokens, cache))
        tokens.append(token)
        yield token


def next_token_logits(model, tokens: list[int], cache: KVCache | None = None):
    """The logits (V,) for the token after `tokens`, in eval mode and without a graph."""
    block = model.config.block_size
    if cache is None or len(tokens) > block:
        if cache is not None:
            cache.reset()  # positions shifted: the cached keys are stale
        feed = tokens[-block:]
    else:
        feed = tokens[cache.length:]
    device = model.output_weight.device
    was_training = model.training
    model.eval()
    try:
        with minigrad.no_grad():
            logits, _ = model(minigrad.tensor([feed], device=device), kv_cache=cache)
    finally:
        model.train(was_training)
    return logits[0, -1]


def sample_next(logits, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: minigrad.Generator | None = None) -> int:
    """One token id from logits (V,): argmax when temperature == 0, otherwise a draw from
    softmax(filtered logits / temperature) by the Gumbel-max trick
    (argmax(logits + Gumbel noise) is distributed as softmax(logits))."""
    generator = generator or minigrad.default_generator()
    logits = logits.detach().to(generator.device, "float64")
    if temperature == 0:
        return int(logits.argmax().item())
    # Shifted so the largest is 0 (softmax is unchanged): a tiny temperature then sends
    # the others to -inf, never several logits to +inf, which would tie in the argmax.
    scores = (logits - logits.max()) / temperature
    if top_k is not None:
        scores = top_k_filter(scores, top_k)
    if top_p is not None:
        scores = top_p_filter(scores, top_p)
    u = minigrad.rand(*scores.shape, dtype="float64", generator=generator)
    gumbel = -(-u.log()).log()  # u = 0 gives -inf: never picked
    return int((scores + gumbel).argmax().item())


def top_k_filter(logits, k: int):
    """Logits (..., V) with all but the k largest set to -inf (ties with the k-th kept)."""
    k = min(k, logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., k - 1:k]  # (..., 1)
    return logits.masked_fill(logits < kth, -math.inf)


def top_p_filter(logits, p: float):
    """Logits (..., V) keeping the most likely tokens until their probability reaches p
    (always at least the top token); the rest become -inf. Tokens tied with the least
    likely kept one are kept too, as in `top_k_filter` (Hugging Face's TopPLogitsWarper
    keeps just enough of them to reach p, picked by its sort order)."""
    descending = logits.sort(dim=-1, descending=True).values
    probs = descending.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the more likely ones
    kept = descending.masked_fill(mass_before >= p, math.inf)
    threshold = kept.amin(dim=-1, keepdim=True)  # the least likely kept logit
    return logits.masked_fill(logits < threshold, -math.inf)


def _until_stop(tokens: Iterator[int], stops: list[list[int]]) -> Iterator[int]:
    """Pass tokens through until the output ends with a stop sequence (not yielded).

    A suffix of the output that could still grow into a stop sequence is held back; what
    is held when the stream ends is yielded then."""
    pending: list[int] = []
    for token in tokens:
        pending.append(token)
        for s in stops:
            if pending[-len(s):] == s:
                yield from pending[:-len(s)]
                return
        held = _longest_stop_prefix(pending, stops)
        yield from pending[:len(pending) - held]
        pending = pending[len(pending) - held:]
    yield from pending


def _longest_stop_prefix(tokens: list[int], stops: list[list[int]]) -> int:
    """Length of the longest suffix of tokens that is a proper prefix of a stop sequence."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(tokens)), best, -1):
            if tokens[-n:] == s[:n]:
                best = n
                break
    return best
