"""``python -m pipelines.config [PARAMS] [--compose CONFIG]`` (``pipelines.config.cli``)."""

import sys

from pipelines.config.cli import main

sys.exit(main())
