"""The benchmark studies behind the figures in results/benchmarks/README.md: each module holds
one study's logic (``main(argv)`` and its tested functions); ``bench/scripts/`` holds the thin
command-line shims that run them."""

__all__: list[str] = []
