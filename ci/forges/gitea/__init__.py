"""Gitea and Forgejo: webhook parsing and the REST client (Forgejo keeps Gitea's API)."""
