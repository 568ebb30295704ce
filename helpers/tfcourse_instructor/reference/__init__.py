"""Reference implementations of graded tasks: instructor-only, never published.

Test files, benchmarks and the sample submissions import these modules; notebooks never do
(a student distribution leaves this sub-package out). One module per job:

- :mod:`~tfcourse_instructor.reference.backward`: attention as an ``autograd.Function`` with its
  backward written by hand, and the FLOPs of each pass (notebook 5, section 1);
- :mod:`~tfcourse_instructor.reference.blockwise`: attention over blocks of keys with an online
  softmax (notebook 5, section 2);
- :mod:`~tfcourse_instructor.reference.kv_cache`: attention and a small causal language model that
  take and return a key/value cache, and generation with or without it (section 3);
- :mod:`~tfcourse_instructor.reference.beam`: beam search with length normalisation (section 4);
- :mod:`~tfcourse_instructor.reference.bpe`: byte-level byte-pair encoding: training with
  incremental pair counts, encoding and decoding (notebook 6, section 1);
- :mod:`~tfcourse_instructor.reference.rotary`: rotary position embeddings, and causal
  self-attention with them and a key/value cache (notebook 6, section 2).
"""
