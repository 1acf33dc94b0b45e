import sys

from udl.cli import main

sys.exit(main())
