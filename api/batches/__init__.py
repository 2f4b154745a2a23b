"""Batch inference in OpenAI's shape: JSONL in, a worker running the lines, JSONL out."""
