import sys

from llmlens.cli import main

# Guarded: the server's decode workers are spawned processes, which import the main module again.
if __name__ == "__main__":
    sys.exit(main())
