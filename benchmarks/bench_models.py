"""Model benchmark: GPT training/generation and BERT forward vs Hugging Face transformers.

Usage: python benchmarks/bench_models.py [--quick] [--json out.json]  (same as `attnkit bench models`)
"""

import sys

from attnkit.bench.models import main

if __name__ == "__main__":
    sys.exit(main())
