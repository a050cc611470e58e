"""Layer benchmark: MultiHeadAttention vs torch.nn.MultiheadAttention vs Keras (width 512, 8 heads, batch 8).

Usage: python benchmarks/bench_layers.py [--quick] [--json out.json]  (same as `attnkit bench layers`)
"""

import sys

from attnkit.bench.layers import main

if __name__ == "__main__":
    sys.exit(main())
