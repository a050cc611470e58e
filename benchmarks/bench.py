"""Every benchmark suite in one process, the same as ``attnkit bench`` (same arguments).

Usage: python benchmarks/bench.py [--quick] [--out DIR] [--compile] [suite ...]
"""

import sys

from attnkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
