"""``python -m streams worker ...`` is the same as ``refstream worker ...``."""

from streams.cli import main

main()
