"""One module per ``edgevc`` subcommand: NAME, HELP, ``add_arguments(parser)``, ``run(args) -> int``."""
