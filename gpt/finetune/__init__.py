"""Fine-tuning a pretrained GPT (`python -m gpt finetune TASK`): `classify` (a class
head, the book's chapter 6), `instruct` (chapter 7), `dpo` (preference tuning); LoRA
adapters for any of them (`lora_options`). Run folders as pretraining's (`runs`)."""
