"""Functional-core benchmark: attnkit vs torch SDPA vs naive (time), chunked vs naive additive (memory).

Usage: python benchmarks/bench_functional.py [--quick] [--json out.json]
"""

import sys

from attnkit.bench.functional import main

if __name__ == "__main__":
    sys.exit(main())
