"""python -m workers: the launcher (workers/launcher.py)."""

import sys

from workers.launcher import main

if __name__ == "__main__":
    sys.exit(main())
