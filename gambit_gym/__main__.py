"""``python -m gambit_gym`` runs the command-line interface."""

import sys

from gambit_gym.cli import main

sys.exit(main())
