"""Byte-level BPE tokenizer (GPT-2 / cl100k / o200k patterns), tiktoken-compatible.

Train with :meth:`Tokenizer.train` (or :func:`train`), encode with tiktoken's semantics,
save in our JSON format and load it back with :func:`load`; read and write tiktoken rank
files, read GPT-2's files, read and write Hugging Face's ``tokenizer.json``; read, run,
write and train SentencePiece BPE models (:class:`SentencePieceTokenizer`,
:func:`train_sentencepiece`). :class:`CharTokenizer` offers the same basic interface for
character-level models.

Modules: :mod:`~bpe.reference` (plain BPE in a few lines: read it first), then the fast
version: :mod:`~bpe.patterns` (splitting text into chunks), :mod:`~bpe.special_tokens`,
:mod:`~bpe.training` (counting chunks, learning merges), :mod:`~bpe.encoding` (text to ids,
on one core or many), :mod:`~bpe.decoding` (ids to bytes and text), :mod:`~bpe.files`
(every file format), :mod:`~bpe.tokenizer` (the :class:`Tokenizer` facade),
:mod:`~bpe.sentencepiece` (SentencePiece BPE models), :mod:`~bpe.sentencepiece_training`
(training them), :mod:`~bpe.char_tokenizer`, :mod:`~bpe.cli`, :mod:`~bpe.corpus` (the
built-in corpus) and :mod:`~bpe.progress`.
"""

from .char_tokenizer import CharTokenizer
from .decoding import StreamDecoder
from .encoding import id_dtype
from .patterns import NAMED_PATTERNS, SplitPattern
from .sentencepiece import SentencePieceTokenizer
from .sentencepiece_training import train_sentencepiece
from .special_tokens import DisallowedSpecialTokenError
from .tokenizer import ENDOFTEXT, Tokenizer, load
from .training import TIE_BREAKS

train = Tokenizer.train
train_from_files = Tokenizer.train_from_files

__all__ = [
    "ENDOFTEXT",
    "NAMED_PATTERNS",
    "TIE_BREAKS",
    "CharTokenizer",
    "DisallowedSpecialTokenError",
    "SentencePieceTokenizer",
    "SplitPattern",
    "StreamDecoder",
    "Tokenizer",
    "id_dtype",
    "load",
    "train",
    "train_from_files",
    "train_sentencepiece",
]
