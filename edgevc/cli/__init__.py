"""The ``edgevc`` command; one module per subcommand in ``edgevc.cli.commands``."""
