"""Subcommands of `ferry`, one module each (see `ci.cli`)."""
