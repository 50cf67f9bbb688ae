"""The data pipeline: clean text (`cleaning`), tokenize it once into memory-mapped token
files (`token_cache`, `dataset.prepare`), and cut batches of windows from them
(`batches`: random windows or the sliding window)."""

from gpt.data.batches import RandomWindows, SlidingWindows
from gpt.data.cleaning import CleaningOptions, CleaningReport, clean_documents
from gpt.data.dataset import Dataset, encode_documents, make_tokenizer, prepare, read_documents
from gpt.data.token_cache import load_tokens, save_tokens

__all__ = [
    "CleaningOptions", "CleaningReport", "Dataset", "RandomWindows", "SlidingWindows",
    "clean_documents", "encode_documents", "load_tokens", "make_tokenizer", "prepare",
    "read_documents", "save_tokens",
]
