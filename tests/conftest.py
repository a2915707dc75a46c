"""Plugins shared by the whole test suite."""

pytest_plugins = ["tests.cluster.fixtures", "tests.gitea.fixtures", "tests.s3.fixtures"]
