from dasct.cli import entry

entry()
