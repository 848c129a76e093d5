"""Benchmarks and comparisons, run from the checkout's root as ``python -m benchmarks.<name>``; not
installed with ppo. The results benchmarks record what they measured in ``docs/data/`` and render the
results pages of ``docs/`` from it (:mod:`benchmarks.pages`)."""
