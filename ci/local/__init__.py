"""`ferry run` and the local backend: a plan run on this machine, jobs in dependency order."""
