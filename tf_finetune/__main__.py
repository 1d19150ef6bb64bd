"""``python -m tf_finetune``: the command-line door."""

import sys

from tf_finetune.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
