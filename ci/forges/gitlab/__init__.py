"""GitLab (gitlab.com and self-managed): webhook parsing and the REST client."""
