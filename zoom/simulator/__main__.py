import sys

from zoom.simulator.cli import main

sys.exit(main())
