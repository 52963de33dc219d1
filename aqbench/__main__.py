import sys

from aqbench.cli import main

sys.exit(main())
