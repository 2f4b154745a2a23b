"""What the project's tiny models share: the byte-level ChatML tokenizer, the training loop, the
checkpoint format and the command line. `scripts/make_tiny_model.py` (tiny-chat) and
`scripts/make_text2sql_model.py` (tiny-sql) only add their generated corpus and checks."""
