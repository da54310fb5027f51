import sys

from llmlens.cli import main

sys.exit(main())
