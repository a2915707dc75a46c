"""GitHub (and GitHub Enterprise Server): webhook parsing and the REST client."""
