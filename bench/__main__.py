"""`python -m bench`: the rule-evaluation benchmark (see bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())
