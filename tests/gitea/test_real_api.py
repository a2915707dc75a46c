"""Ferry's Gitea client against the real Gitea's API: reading the spec at a commit and a
branch's head commit, writing statuses and reading them back, the write-access question the
trust decision rests on, and the comments and changed files of a real pull request."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from ci.forges.client import TokenCredentials
from ci.forges.errors import ForgeError
from ci.forges.gitea.client import GiteaClient, default_api_url
from ci.forges.statuses import Conclusion, Status
from tests.gitea.api import GiteaApi, GiteaApiError
from tests.gitea.pushing import WorkingCopy


def test_ferry_reads_writes_and_asks_the_real_gitea(gitea_api: GiteaApi, tmp_path: Path) -> None:
    suffix = secrets.token_hex(3)
    org = f"api-{suffix}"
    gitea_api.create_org(org)
    repository = gitea_api.create_repo("app", org=org)
    full_name = repository["full_name"]
    bot = gitea_api.create_user(f"bot-{suffix}")
    writer = gitea_api.create_user(f"writer-{suffix}")
    outsider = gitea_api.create_user(f"outsider-{suffix}")
    gitea_api.add_collaborator(full_name, bot.name, "admin")
    gitea_api.add_collaborator(full_name, writer.name, "write")
    work = WorkingCopy(tmp_path / "work", repository["clone_url"], writer)
    base = work.commit({".ci.yaml": "jobs: {}\n", "src/a.py": "a = 1\n"})
    work.push_branch("main")
    work.checkout("change")
    head = work.commit({"src/b.py": "b = 2\n"})
    work.push_branch("change")
    pull = gitea_api.as_user(writer).create_pull(full_name, head="change")

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = GiteaClient(http, api_url=default_api_url(repository["html_url"]),
                                 credentials=TokenCredentials(token=bot.token))
            assert await client.read_file(full_name, ".ci.yaml", base) == b"jobs: {}\n"
            assert await client.read_file(full_name, "src/b.py", base) is None
            assert await client.changed_files(full_name, pull["number"]) == ("src/b.py",)
            message = work.git("log", "-1", "--format=%B", head)
            assert (await client.commit_message(full_name, head) or "").strip() == message
            assert await client.commit_message(full_name, "f" * 40) is None
            # What scheduled and manual runs of a branch run.
            assert await client.branch_head(full_name, "main") == base
            assert await client.branch_head(full_name, "change") == head
            assert await client.branch_head(full_name, "no-such-branch") is None
            assert await client.default_branch(full_name) == "main"
            status = Status(conclusion=Conclusion.SUCCESS, context="ferry", title="Succeeded")
            await client.report_status(full_name, head, status)
            assert await client.has_status(full_name, head, status)
            assert not await client.has_status(
                full_name, head, Status(conclusion=Conclusion.FAILURE, context="ferry",
                                        title="Failed"))
            assert await client.has_write_access(full_name, writer.name)
            assert not await client.has_write_access(full_name, outsider.name)
            assert not await client.has_write_access(full_name, "nobody-by-that-name")
            await client.comment(full_name, pull["number"], "from Ferry")

            # A bot with Write only: statuses work, the permission question does not.
            gitea_api.add_collaborator(full_name, bot.name, "write")
            await client.report_status(full_name, head, status)
            with pytest.raises(ForgeError):
                await client.has_write_access(full_name, writer.name)

    asyncio.run(scenario())
    stored = gitea_api.statuses(full_name, head)[0]
    assert (stored["state"], stored["context"]) == ("success", "ferry")
    with pytest.raises(GiteaApiError) as refused:
        gitea_api.as_user(writer).permission(full_name, outsider.name)
    assert refused.value.status_code == 403
