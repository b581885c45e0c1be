"""`python -m advisor`: the same as the `lr-advisor` command."""

import sys

from advisor.cli import main

sys.exit(main())
