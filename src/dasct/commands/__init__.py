"""One module per `dasct` subcommand; see dasct.cli.COMMANDS."""
