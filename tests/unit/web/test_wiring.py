"""Runtime.web: the pages' sign-in exists exactly when `web.public_url` is set."""

from __future__ import annotations

import asyncio

import httpx

from ci.settings import Settings, SignInProvider, WebSettings
from webhooks.web.access import ForgeAccess
from webhooks.web.sessions import SessionCookies
from webhooks.wiring import open_web

PROVIDER = SignInProvider(name="gitea", forge="gitea", url="https://gitea.example",
                          client_id="id", client_secret="secret")


def test_no_public_url_no_pages() -> None:
    async def opened() -> object:
        async with httpx.AsyncClient() as http:
            return open_web(Settings(web=WebSettings(providers=(PROVIDER,))), http)
    assert asyncio.run(opened()) == (None, None)


def test_a_public_url_opens_the_sign_in_for_each_provider() -> None:
    async def opened() -> None:
        async with httpx.AsyncClient() as http:
            web, signin = open_web(Settings(web=WebSettings(
                public_url="https://ferry.example", session_key="k" * 40,
                providers=(PROVIDER,))), http)
            assert web is not None and signin is not None
            assert isinstance(web.sessions, SessionCookies) and web.sessions is signin.sessions
            assert isinstance(web.access, ForgeAccess)
            assert list(signin.providers) == ["gitea"]
            assert signin.redirect_uri("gitea") == (
                "https://ferry.example/ui/signin/gitea/callback")
    asyncio.run(opened())
