"""The names of the files gpt writes, in one place.

A run folder (`python -m gpt train`):

    config.json                 {"model": GPTConfig, "train": TrainConfig, "data": dataset folder}
    tokenizer.json              the tokenizer (bpe.load reads it)
    model.safetensors           the weights of the latest checkpoint
    training_state.<save id>.safetensors
                                beside them, what a resume needs: optimizer moments,
                                schedule, RNG and data-order states (the weights name
                                their save id: see minigrad.io.checkpoint)
    metrics.jsonl               per-step loss, lr, grad norm, tokens/s, MFU; val loss; events
    loss.png                    train and validation loss curves
    divergence.png              `python -m gpt report`: the last steps, layer by layer
    samples.txt                 text generated at the end of training
    data/                       the prepared dataset, when the run prepared its own
    last_good/step-NNNNNNNN/    --on-divergence rollback: the checkpoints a rollback restores
                                (the last 3 interval ones, never one a Ctrl-C saved)
    .lock                       held by the process training in the folder (gpt.lock)
    tensorboard/, wandb/        the optional loggers' own files

A fine-tuning run folder (`python -m gpt finetune instruct | dpo`) holds the same files
(config.json adds a "finetune" section: kind, starting model, template, options, LoRA
settings), and:

    adapters.safetensors        LoRA runs: the adapters alone (minigrad.nn.lora)
    evaluation.json             test-split loss and perplexity (DPO: reward accuracy and
                                margins) before and after, the judge's scores or a note
    test-responses.json         instruct: the test records, each with its model_response

A classification run folder (`python -m gpt finetune classify`; "finetune" also holds the
labels, data and head options) adds:

    best.safetensors            the weights at the lowest validation loss (early stopping)
    classification.json         accuracy, precision, recall, F1, confusion matrix per split
    confusion-<split>.png       each split's confusion matrix (needs matplotlib)

A dataset folder (`python -m gpt prepare`, or a run's data/):

    dataset.json         sources, cleaning report, tokenizer kind, token counts,
                         fingerprint, and "files": the names of the three files below
    tokenizer.<id>.json  the tokenizer
    train.<id>.npy       training tokens (smallest unsigned dtype, memory-mapped on load)
    val.<id>.npy         validation tokens
                         (<id>: one preparation's id; replacing dataset.json commits a
                         new preparation at once, see gpt.data.dataset)
"""

from minigrad.io.checkpoint import MODEL_FILE

# -- run folder -------------------------------------------------------------------------
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"  # also in a dataset folder
WEIGHTS_FILE = MODEL_FILE  # io.save_checkpoint names the checkpoint's files
METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss.png"
REPORT_PLOT_FILE = "divergence.png"  # `python -m gpt report`: per-layer curves
SAMPLES_FILE = "samples.txt"
RUN_DATA_DIR = "data"
TENSORBOARD_DIR = "tensorboard"
ROLLBACK_DIR = "last_good"  # --on-divergence rollback: the checkpoints to go back to
PARALLEL_FILE = "parallel.json"  # --parallel: the layout a run was trained with

# -- fine-tuning run folder -------------------------------------------------------------
ADAPTERS_FILE = "adapters.safetensors"
EVALUATION_FILE = "evaluation.json"
RESPONSES_FILE = "test-responses.json"
BEST_WEIGHTS_FILE = "best.safetensors"
CLASSIFICATION_FILE = "classification.json"
CONFUSION_PLOT = "confusion-{split}.png"

# -- dataset folder ---------------------------------------------------------------------
DATASET_FILE = "dataset.json"
TRAIN_TOKENS_FILE = "train.npy"  # versioned as train.<id>.npy by gpt.data.dataset.file_name
VAL_TOKENS_FILE = "val.npy"
