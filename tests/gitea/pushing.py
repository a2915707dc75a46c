"""A working copy that commits and pushes with the real `git`, over HTTP, to the real Gitea.

The token travels as an HTTP header set in git's environment config, never in a URL or in
`.git/config`, the way Ferry's own clone step sends it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.gitea.api import User

GIT_SECONDS = 120.0


class WorkingCopy:
    """`git init` in `directory` with `remote` as origin; commits are authored by `user`."""

    def __init__(self, directory: Path, remote: str, user: User) -> None:
        self.directory = directory
        self.remote = remote
        self.user = user
        directory.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("remote", "add", "origin", remote)

    def git(self, *args: str) -> str:
        home = self.directory.parent / f".home-{self.directory.name}"
        home.mkdir(exist_ok=True)
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": self.user.name, "GIT_AUTHOR_EMAIL": f"{self.user.name}@example.com",
            "GIT_COMMITTER_NAME": self.user.name,
            "GIT_COMMITTER_EMAIL": f"{self.user.name}@example.com",
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: {self.user.basic_auth()}",
        }
        done = subprocess.run(["git", *args], cwd=self.directory, env=environment,
                              capture_output=True, text=True, check=False, timeout=GIT_SECONDS)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def commit(self, files: Mapping[str, str], message: str = "a change") -> str:
        """Write `files` (path -> text; executable if it starts with `#!`), commit; the sha."""
        for name, text in files.items():
            path = self.directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755 if text.startswith("#!") else 0o644)
            self.git("add", name)
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def fetch(self, branch: str, *, remote: str = "origin") -> None:
        """Fetch `branch` and check it out as the local branch of that name."""
        self.git("fetch", "--quiet", remote, f"refs/heads/{branch}")
        self.git("checkout", "--quiet", "-B", branch, "FETCH_HEAD")

    def checkout(self, branch: str, *, new: bool = True) -> None:
        self.git("checkout", "--quiet", *(["-b"] if new else []), branch)

    def push(self, *refs: str, remote: str = "origin") -> None:
        self.git("push", "--quiet", remote, *refs)

    def push_branch(self, branch: str) -> None:
        self.push(f"HEAD:refs/heads/{branch}")

    def push_tag(self, tag: str) -> str:
        """An annotated tag at HEAD, pushed; the commit's sha."""
        self.git("tag", "-a", tag, "-m", f"release {tag}")
        self.push(f"refs/tags/{tag}")
        return self.git("rev-parse", "HEAD")

    def delete_branch(self, branch: str) -> None:
        self.push(f":refs/heads/{branch}")
