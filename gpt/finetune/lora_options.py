"""The LoRA flags every `python -m gpt finetune` command takes, and what they do.

    --lora RANK           train rank-RANK adapters instead of every weight (0: off)
    --lora-alpha ALPHA    the adapters' scale is ALPHA / RANK (default: 2 RANK)
    --lora-targets LIST   presets attention, mlp, all, or layer-name patterns, comma
                          separated (default: attention)
    --lora-dropout P      dropout on the adapters' input (default: 0)

A command calls `add_lora_flags(parser)`, then `lora_settings(args)` (None without
--lora) to record in its run config, and `apply_lora(model, settings)` to put the
adapters on the model (printing trainable vs total parameters is the caller's).
"""

from __future__ import annotations

import minigrad
from minigrad.nn import lora

DEFAULT_TARGETS = "attention"


def add_lora_flags(parser) -> None:
    group = parser.add_argument_group("LoRA")
    group.add_argument("--lora", type=int, default=0, metavar="RANK",
                       help="train LoRA adapters of this rank instead of every weight "
                            "(default: 0, full fine-tuning)")
    group.add_argument("--lora-alpha", type=float, default=None, metavar="ALPHA",
                       help="adapter scale ALPHA / RANK (default: 2 x RANK)")
    group.add_argument("--lora-targets", default=DEFAULT_TARGETS, metavar="LIST",
                       help="comma-separated presets (" + ", ".join(lora.TARGET_PRESETS)
                            + f") or layer-name patterns (default: {DEFAULT_TARGETS})")
    group.add_argument("--lora-dropout", type=float, default=0.0, metavar="P",
                       help="dropout on the adapters' input (default: 0)")


def lora_settings(args) -> dict | None:
    """The LoRA settings the flags ask for, as JSON-ready values; None without --lora."""
    if args.lora < 0:
        raise ValueError(f"--lora must be a rank >= 1 (or 0 for none), got {args.lora}")
    if not args.lora:
        for flag, value, default in (("--lora-alpha", args.lora_alpha, None),
                                     ("--lora-targets", args.lora_targets, DEFAULT_TARGETS),
                                     ("--lora-dropout", args.lora_dropout, 0.0)):
            if value != default:
                raise ValueError(f"{flag} needs --lora RANK")
        return None
    if not 0.0 <= args.lora_dropout < 1.0:
        raise ValueError(f"--lora-dropout must be in [0, 1), got {args.lora_dropout}")
    alpha = 2.0 * args.lora if args.lora_alpha is None else args.lora_alpha
    return {"rank": args.lora, "alpha": alpha, "targets": args.lora_targets,
            "dropout": args.lora_dropout}


def apply_lora(model, settings: dict | None, seed: int = 0):
    """Inject the adapters `settings` describe (None: leave the model as it is); returns
    the `LoRAReport`, or None."""
    if settings is None:
        return None
    return lora.inject_lora(model, settings["rank"], settings["alpha"], settings["dropout"],
                            settings["targets"], generator=minigrad.Generator(seed))
