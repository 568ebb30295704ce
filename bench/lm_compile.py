"""Does ``torch.compile`` speed up the training step of the kit's language-model recipe on CPU?

Builds the kit's recipe (``bench/lm_quality.py``'s ``KIT``: notebook 3's ``CausalLM``) twice
from the same seed, one called eagerly and one through ``torch.compile`` (inductor), and times
training steps of both, interleaved, on tiny Shakespeare's batches. Prints the compiled
model's first step (the compilation), the median step of each and the ratio of steps per
second.

    python bench/lm_compile.py [--steps 50] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from lm_quality import KIT, corpus_text

from tfcourse.optimizer import make_optimizer
from tfcourse.vocab import CharTokenizer
from tfcourse_instructor.reference.training import get_batch, train_step

WARM_UP_STEPS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps of each")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = corpus_text("shakespeare")
    tokenizer = CharTokenizer.from_text(text)
    data = tokenizer.encode(text)
    runs = {}
    for name in ("eager", "compiled"):
        model = KIT.build(tokenizer.vocab_size)
        called = torch.compile(model) if name == "compiled" else model
        runs[name] = (called, make_optimizer(model, KIT.train), [])
    generator = torch.Generator().manual_seed(0)
    block, batch = KIT.model["block_size"], KIT.train.batch_size
    for repeat in range(WARM_UP_STEPS + args.steps):
        for name, (called, optimizer, times) in runs.items():
            x, y = get_batch(data, block, batch, generator)
            start = time.perf_counter()
            train_step(called, optimizer, x, y, KIT.train.min_lr)
            seconds = time.perf_counter() - start
            if repeat == 0 and name == "compiled":
                print(f"compiled model's first step (compiling): {seconds:.1f} s")
            if repeat >= WARM_UP_STEPS:
                times.append(seconds)
    medians = {name: statistics.median(times) for name, (_, _, times) in runs.items()}
    for name, median in medians.items():
        print(f"{name:9} median step {1000 * median:6.1f} ms")
    print(f"compiled / eager, steps per second: {medians['eager'] / medians['compiled']:.2f}")


if __name__ == "__main__":
    main()
