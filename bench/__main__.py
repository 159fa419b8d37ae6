"""make bench: runs every benchmark under bench/ and prints their ratios."""

import sys


def main() -> int:
    print("no benchmarks yet: see the open benchmarks issue", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
