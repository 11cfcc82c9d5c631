import sys

from telemed.zoom.simulator.cli import main

sys.exit(main())
