import sys

from leanvla.cli import main

sys.exit(main())
