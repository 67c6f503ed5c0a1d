"""``python -m streams worker ...`` is the same as ``refstream worker ...``."""

from streams.app import main

main()
