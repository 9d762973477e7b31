import sys

from txtool.cli import main

sys.exit(main())
