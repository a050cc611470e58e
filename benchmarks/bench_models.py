"""Model benchmark: GPT training, cached generation and BERT forward vs Hugging Face transformers, and
bfloat16 autocast; the same benchmark as `attnkit bench models` (attnkit.bench.models), sizes as options.

Usage: python benchmarks/bench_models.py [--quick] [--vocab 50257] [--repeats 5] [--threads 0] [--json out.json]
"""

import sys

from attnkit.bench.models import main

if __name__ == "__main__":
    sys.exit(main())
