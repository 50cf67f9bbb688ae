"""A GPT on minigrad: the model (`GPT`, `GPTConfig`), streaming generation with a KV
cache (`generate`, `KVCache`), and the data pipeline, training loop and command line
(`python -m gpt`)."""

from gpt.generate import generate
from gpt.kv_cache import KVCache
from gpt.model import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig", "KVCache", "generate"]
