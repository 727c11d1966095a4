"""The subcommands of the ``chainrule`` command line, one module each."""
