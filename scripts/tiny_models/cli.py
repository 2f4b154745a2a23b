"""The command line and the build sequence both tiny-model scripts run."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from tiny_models.checkpoint import save_checkpoint
from tiny_models.training import DEFAULT_SIZE, Example, ModelSize, TrainResult, build_model, train

logger = logging.getLogger(__name__)


def parse_args(
    description: str, output: Path, steps: int, argv: Iterable[str] | None
) -> argparse.Namespace:
    """Command-line options, with the script's own default output directory and steps."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output", type=Path, default=output)
    parser.add_argument("--steps", type=int, default=steps, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    return parser.parse_args(None if argv is None else list(argv))


def should_build(args: argparse.Namespace) -> bool:
    """Set up logging; False when the checkpoint exists and --force was not given.

    When building, torch is seeded and limited to ``--threads`` threads.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if (args.output / "config.json").exists() and not args.force:
        logger.info("%s already exists; pass --force to rebuild it", args.output)
        return False
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return True


def fit_and_save(
    tokenizer: PreTrainedTokenizerFast,
    examples: list[Example],
    args: argparse.Namespace,
    size: ModelSize = DEFAULT_SIZE,
    batch_size: int = 32,
) -> tuple[LlamaForCausalLM, TrainResult]:
    """Build the model, train it on ``examples`` and save the checkpoint to ``args.output``."""
    logger.info("vocab %d, %d examples", len(tokenizer), len(examples))
    model = build_model(len(tokenizer), size)
    logger.info("model: %d parameters", model.num_parameters())
    result = train(model, examples, args.steps, args.seed, batch_size)
    save_checkpoint(model, tokenizer, args.output)
    return model, result
