"""Hugging Face checkpoints: `transformers` writes tiny random GPT-2 and Llama models
(tied / untied heads, grouped- and multi-query attention, odd head counts, RoPE scaling),
ours load them and match its logits, gradients and greedy generations (with the KV cache),
and what we write back loads in `transformers` with the same logits."""

import json

import numpy as np
import pytest

import minigrad
from gpt import pretrained
from gpt.generate import generate
from gpt.kv_cache import KVCache
from gpt.model import GPT, GPTConfig
from gpt.pretrained import PretrainedError, load_pretrained, save_pretrained

transformers = pytest.importorskip("transformers", reason="compares with Hugging Face "
                                   "transformers (the 'test' extra)")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

VOCAB = 61
GPT2_CONFIGS = {
    "tied-3-heads": dict(n_embd=12, n_head=3, n_layer=2, n_positions=24),
    "untied-relu-n-inner": dict(n_embd=16, n_head=4, n_layer=2, n_positions=24, n_inner=20,
                                activation_function="relu", tie_word_embeddings=False,
                                layer_norm_epsilon=1e-6),
}
LLAMA_CONFIGS = {
    "mha-tied": dict(hidden_size=16, num_attention_heads=4, num_key_value_heads=4,
                     intermediate_size=24, tie_word_embeddings=True),
    "gqa-6-2-untied-linear": dict(hidden_size=24, num_attention_heads=6,
                                  num_key_value_heads=2, intermediate_size=40,
                                  rope_theta=500000.0, rms_norm_eps=1e-5,
                                  rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "mqa-3-heads-bias-llama3": dict(hidden_size=18, num_attention_heads=3,
                                    num_key_value_heads=1, intermediate_size=30,
                                    attention_bias=True, mlp_bias=True,
                                    rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                  "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0,
                                                  "original_max_position_embeddings": 8}),
}
CONFIGS = [("gpt2", n) for n in GPT2_CONFIGS] + [("llama", n) for n in LLAMA_CONFIGS]
# transformers computes llama3-scaled frequencies in float32 only: that config is compared
# in float32; the others in float64 (to 1e-9) and float32 (to 1e-4).
FLOAT32_ONLY = {"mqa-3-heads-bias-llama3"}


def precision(name) -> tuple[str, float]:
    return ("float32", 1e-4) if name in FLOAT32_ONLY else ("float64", 1e-9)


def hf_model(torch, family, name, seed=0):
    torch.manual_seed(seed)
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0,
                                         **GPT2_CONFIGS[name])
        return transformers.GPT2LMHeadModel(config).eval()
    config = transformers.LlamaConfig(vocab_size=VOCAB, num_hidden_layers=2,
                                      max_position_embeddings=24, bos_token_id=0,
                                      eos_token_id=0, pad_token_id=0, **LLAMA_CONFIGS[name])
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, torch):
    """(family, name) -> a folder transformers wrote with save_pretrained."""
    folders = {}
    for family, name in CONFIGS:
        folder = tmp_path_factory.mktemp(f"{family}-{name}")
        hf_model(torch, family, name).save_pretrained(folder, safe_serialization=True)
        folders[family, name] = folder
    return folders


def float64_llama(torch, model):
    """Make transformers' Llama compute in float64 throughout: whatever the model's dtype
    it computes RMSNorm and the rotary tables in float32. The tables are rebuilt from the
    RoPE formula theta^(-2i/d) (divided by the factor for linear scaling); the norms
    compute x / sqrt(mean(x^2) + eps) * weight in the input's dtype."""
    config = model.config
    params = config.rope_parameters
    dim = config.hidden_size // config.num_attention_heads
    inv_freq = params["rope_theta"] ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    inv_freq = inv_freq / params.get("factor", 1.0)

    def forward(x, position_ids):
        angles = position_ids[..., None].double() * inv_freq
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    model.model.rotary_emb.forward = forward
    for module in model.modules():
        if type(module).__name__ == "LlamaRMSNorm":
            module.forward = (lambda m: lambda x: x * torch.rsqrt(
                x.pow(2).mean(-1, keepdim=True) + m.variance_epsilon) * m.weight)(module)


def reference(torch, folder, dtype):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    if dtype == "float64" and model.config.model_type == "llama":
        float64_llama(torch, model)
    return model.eval()


def ids(batch=2, length=11, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, length))


def hf_logits(torch, model, tokens):
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.numpy()


def our_logits(model, tokens):
    with minigrad.no_grad():
        return model(minigrad.tensor(tokens))[0].numpy()


@pytest.mark.parametrize("family, name, dtype, tol", [
    (family, name, dtype, tol) for family, name in CONFIGS
    for dtype, tol in (("float64", 1e-9), ("float32", 1e-4))
    if name not in FLOAT32_ONLY or dtype == "float32"])
def test_logits_match_transformers(checkpoints, torch, family, name, dtype, tol):
    folder = checkpoints[family, name]
    ours = load_pretrained(folder, dtype=dtype)
    tokens = ids()
    np.testing.assert_allclose(our_logits(ours, tokens),
                               hf_logits(torch, reference(torch, folder, dtype), tokens),
                               rtol=tol, atol=tol)


def test_config_mapping_reads_the_checkpoint_settings(checkpoints):
    gqa = load_pretrained(checkpoints["llama", "gqa-6-2-untied-linear"]).config
    assert (gqa.n_head, gqa.kv_heads, gqa.tie_weights, gqa.rope_theta, gqa.norm_eps) == \
        (6, 2, False, 500000.0, 1e-5)
    assert gqa.rope_scaling == {"rope_type": "linear", "factor": 2.0}
    gpt2 = load_pretrained(checkpoints["gpt2", "untied-relu-n-inner"]).config
    assert (gpt2.mlp, gpt2.mlp_hidden, gpt2.tie_weights, gpt2.norm_eps) == \
        ("relu", 20, False, 1e-6)


@pytest.mark.parametrize("family, name", [("gpt2", "tied-3-heads"),
                                          ("llama", "gqa-6-2-untied-linear")])
def test_gradients_match_transformers(checkpoints, torch, family, name):
    """The backward through loaded weights (GQA's repeated key/value heads included)."""
    folder = checkpoints[family, name]
    ours = load_pretrained(folder, dtype="float64")
    hf = reference(torch, folder, "float64")
    tokens = ids(length=12)
    _, loss = ours(minigrad.tensor(tokens[:, :-1]), minigrad.tensor(tokens[:, 1:]))
    loss.backward()
    hf_loss = torch.nn.functional.cross_entropy(
        hf(torch.tensor(tokens[:, :-1])).logits.reshape(-1, VOCAB),
        torch.tensor(tokens[:, 1:]).reshape(-1))
    hf_loss.backward()
    assert loss.item() == pytest.approx(hf_loss.item(), abs=1e-12)
    hf_params = dict(hf.named_parameters())
    layer = "model.layers.1" if family == "llama" else "transformer.h.1"
    checks = {"h.1.mlp.c_proj.weight": f"{layer}.mlp.down_proj.weight"
              if family == "llama" else f"{layer}.mlp.c_proj.weight"}
    for ours_name, hf_name in checks.items():
        hf_grad = hf_params[hf_name].grad.numpy()
        hf_grad = hf_grad if family == "llama" else hf_grad.T  # Conv1D is (in, out)
        np.testing.assert_allclose(dict(ours.named_parameters())[ours_name].grad.numpy(),
                                   hf_grad, rtol=1e-9, atol=1e-12)
    q_rows = ours.config.n_head * ours.config.head_dim
    kv_rows = ours.config.kv_heads * ours.config.head_dim
    c_attn = dict(ours.named_parameters())["h.0.attn.c_attn.weight"].grad.numpy()
    if family == "llama":
        attn = "model.layers.0.self_attn"
        hf_c_attn = np.concatenate([hf_params[f"{attn}.{p}_proj.weight"].grad.numpy()
                                    for p in "qkv"])
        assert c_attn.shape[0] == q_rows + 2 * kv_rows
    else:
        hf_c_attn = hf_params["transformer.h.0.attn.c_attn.weight"].grad.numpy().T
    np.testing.assert_allclose(c_attn, hf_c_attn, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("family, name", CONFIGS)
def test_greedy_generation_with_kv_cache_matches_transformers(checkpoints, torch, family,
                                                              name):
    folder = checkpoints[family, name]
    dtype, _ = precision(name)
    ours = load_pretrained(folder, dtype=dtype)
    hf = reference(torch, folder, dtype)
    prompt = ids(batch=1, length=5, seed=3)
    with torch.no_grad():
        expected = hf.generate(torch.tensor(prompt), max_new_tokens=12, do_sample=False,
                               min_new_tokens=12, pad_token_id=0)[0, 5:].tolist()
    assert list(generate(ours, prompt[0].tolist(), 12, temperature=0)) == expected


def test_kv_cache_holds_the_key_value_heads_only(checkpoints):
    """The GQA cache stores n_kv_head heads (the memory it saves), and cached decoding
    equals recomputation."""
    model = load_pretrained(checkpoints["llama", "gqa-6-2-untied-linear"], dtype="float64")
    tokens = ids(batch=1, length=9)
    cache = KVCache(model.config.n_layer, model.config.block_size)
    with minigrad.no_grad():
        first, _ = model(minigrad.tensor(tokens[:, :6]), kv_cache=cache)
        rest, _ = model(minigrad.tensor(tokens[:, 6:]), kv_cache=cache)
    assert cache.layers[0].keys.shape == (1, 2, model.config.block_size, 4)
    np.testing.assert_allclose(np.concatenate([first.numpy(), rest.numpy()], axis=1),
                               our_logits(model, tokens), rtol=1e-10, atol=1e-12)
    prompt = tokens[0, :4].tolist()
    assert list(generate(model, prompt, 10, temperature=0)) == \
        list(generate(model, prompt, 10, temperature=0, use_cache=False))


@pytest.mark.parametrize("family, name", CONFIGS)
def test_written_back_loads_in_transformers_with_same_logits(checkpoints, torch, tmp_path,
                                                             family, name):
    dtype, tol = precision(name)
    ours = load_pretrained(checkpoints[family, name], dtype=dtype)
    save_pretrained(ours, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == family
    hf = reference(torch, tmp_path, dtype)
    tokens = ids(seed=5)
    np.testing.assert_allclose(hf_logits(torch, hf, tokens), our_logits(ours, tokens),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("overrides, family", [
    (dict(), "gpt2"),
    (dict(tie_weights=False, mlp="relu"), "gpt2"),
    (dict(positions="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_head=4, n_kv_head=2),
     "llama"),
    (dict(positions="rope", norm="rmsnorm", mlp="swiglu", tie_weights=False, n_kv_head=1,
          rope_theta=1234.0, norm_eps=1e-5), "llama"),
])
def test_our_models_load_in_transformers(torch, tmp_path, overrides, family):
    """A model trained here (random init) saved in HF format: the layout follows the
    config, and transformers computes the same logits."""
    config = GPTConfig(**{**dict(vocab_size=VOCAB, block_size=16, n_layer=2, n_head=2,
                                 n_embd=16), **overrides})
    ours = GPT(config, generator=minigrad.Generator(1)).to(dtype="float64").eval()
    save_pretrained(ours, tmp_path)
    hf = reference(torch, tmp_path, "float64")
    assert hf.config.model_type == family
    tokens = ids(length=10)
    np.testing.assert_allclose(hf_logits(torch, hf, tokens), our_logits(ours, tokens),
                               rtol=1e-9, atol=1e-9)
    back = load_pretrained(tmp_path, dtype="float64")
    assert back.config.to_dict() == {**ours.config.to_dict(),
                                     "norm_eps": back.config.norm_eps,
                                     "n_kv_head": back.config.n_kv_head,
                                     "mlp_hidden_size": back.config.mlp_hidden_size}
    np.testing.assert_array_equal(our_logits(back, tokens), our_logits(ours, tokens))


def test_sharded_checkpoint_loads(torch, tmp_path):
    hf = hf_model(torch, "llama", "mha-tied")
    hf.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="10KB")
    assert (tmp_path / pretrained.HF_INDEX_FILE).is_file()
    assert not (tmp_path / pretrained.HF_WEIGHTS_FILE).exists()
    tokens = ids()
    np.testing.assert_allclose(our_logits(load_pretrained(tmp_path), tokens),
                               hf_logits(torch, hf, tokens), rtol=1e-4, atol=1e-4)


def test_hub_gpt2_names_without_prefix_and_mask_buffers(checkpoints, tmp_path, torch):
    """The hub's original gpt2 files name tensors without "transformer." and carry the
    causal-mask buffers (h.N.attn.bias); both are understood."""
    from safetensors.torch import load_file, save_file

    source = checkpoints["gpt2", "tied-3-heads"]
    tensors = {name.removeprefix("transformer."): t
               for name, t in load_file(source / "model.safetensors").items()}
    tensors["h.0.attn.bias"] = torch.ones(1, 1, 24, 24)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    tokens = ids()
    np.testing.assert_array_equal(our_logits(load_pretrained(tmp_path), tokens),
                                  our_logits(load_pretrained(source), tokens))


def test_block_size_crops_the_context(checkpoints):
    full = load_pretrained(checkpoints["gpt2", "tied-3-heads"], dtype="float64")
    short = load_pretrained(checkpoints["gpt2", "tied-3-heads"], dtype="float64",
                            block_size=8)
    assert short.config.block_size == 8 and short.wpe.weight.shape == (8, 12)
    tokens = ids(length=8)
    np.testing.assert_array_equal(our_logits(short, tokens), our_logits(full, tokens))
    with pytest.raises(PretrainedError, match="block_size must be in 1..24"):
        load_pretrained(checkpoints["gpt2", "tied-3-heads"], block_size=25)


# -- refusals ---------------------------------------------------------------------------
def test_pickled_weights_are_refused_with_the_conversion(checkpoints, tmp_path):
    (tmp_path / "config.json").write_text(
        (checkpoints["gpt2", "tied-3-heads"] / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    with pytest.raises(PretrainedError, match="pytorch_model.bin.*safe_serialization=True"):
        load_pretrained(tmp_path)


def test_unsupported_configs_name_the_setting(checkpoints, tmp_path):
    config = json.loads((checkpoints["gpt2", "tied-3-heads"] / "config.json").read_text())
    with pytest.raises(PretrainedError, match="activation_function = 'gelu'"):
        pretrained.config_from_hf({**config, "activation_function": "gelu"})
    with pytest.raises(PretrainedError, match="model_type 'bert'"):
        pretrained.config_from_hf({**config, "model_type": "bert"})
    llama = json.loads((checkpoints["llama", "mha-tied"] / "config.json").read_text())
    with pytest.raises(PretrainedError, match="rope_scaling type = 'yarn'"):
        pretrained.config_from_hf({**llama, "rope_parameters": {"rope_type": "yarn",
                                                                "factor": 4.0}})
    with pytest.raises(PretrainedError, match="no Hugging Face layout"):
        save_pretrained(GPT(GPTConfig(vocab_size=8, block_size=4, n_layer=1, n_head=1,
                                      n_embd=4, norm_placement="post")), tmp_path)


@pytest.mark.parametrize("overrides, setting", [
    (dict(qk_norm=True), "qk_norm"),
    (dict(positions="rope", norm="rmsnorm", mlp="swiglu", qk_norm=True), "qk_norm"),
    (dict(positions="rope", norm="rmsnorm", mlp="swiglu", logit_softcap=30.0),
     "logit_softcap"),
])
def test_settings_no_layout_holds_are_refused_not_dropped(tmp_path, overrides, setting):
    """QK-norm and logit soft-capping change the logits and neither GPT-2 nor Llama has
    them: writing the rest would give transformers a different model."""
    config = GPTConfig(vocab_size=8, block_size=4, n_layer=1, n_head=2, n_embd=8, **overrides)
    with pytest.raises(PretrainedError, match=f"save_pretrained: {setting} cannot be written"):
        save_pretrained(GPT(config), tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_older_config_form_of_rope_settings():
    """transformers < 5 wrote rope_theta and rope_scaling (with "type") at the top."""
    assert pretrained.rope_settings({"rope_theta": 5e5, "rope_scaling": {
        "type": "linear", "factor": 4.0}}) == (5e5, {"rope_type": "linear", "factor": 4.0})
    assert pretrained.rope_settings({}) == (10000.0, None)


def test_hub_id_without_huggingface_hub_says_how_to_place_files(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)
    with pytest.raises(PretrainedError, match="huggingface_hub is not installed.*config.json"):
        load_pretrained("someone/some-model")


def test_hub_id_without_network_says_how_to_place_files(monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")

    def offline(repo_id, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(PretrainedError, match="fetching it from the Hugging Face hub failed "
                       r"\(OSError: network unreachable\).*--local-dir gpt2"):
        load_pretrained("gpt2")
