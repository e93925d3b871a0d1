"""Subcommands of `diit`: one module each, with `register(subparsers)`."""
