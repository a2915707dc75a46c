from __future__ import annotations

import pytest

from ci.local.credentials import (
    SecretArgumentError,
    job_secrets,
    parse_secret_arguments,
    secret_store,
)
from pipelines.spec import SecretRef

TOKEN = SecretRef(env="TOKEN", secret="registry", key="token")
KEY = SecretRef(env="DEPLOY_KEY", secret="deploy", key="key")


def test_arguments_by_env_name_or_secret_and_key() -> None:
    assert parse_secret_arguments(["TOKEN=a=b", "deploy/key="]) == {
        "TOKEN": "a=b",
        "deploy/key": "",
    }


@pytest.mark.parametrize("argument", ["hunter2", "=value"])
def test_a_malformed_argument_is_refused_without_echoing_it(argument: str) -> None:
    with pytest.raises(SecretArgumentError) as caught:
        parse_secret_arguments([argument])
    assert argument not in str(caught.value)


def test_given_values_win_over_the_environment_and_missing_ones_are_listed() -> None:
    store = secret_store(
        [TOKEN, KEY], given={"registry/token": "given"}, environment={"TOKEN": "env", "X": "y"}
    )
    assert store == {"registry/token": "given"}
    secrets = job_secrets([TOKEN, KEY], store)
    assert secrets.values == {"TOKEN": "given"}
    assert secrets.missing == (KEY,)


def test_the_environment_fills_what_was_not_given() -> None:
    store = secret_store([TOKEN], given={}, environment={"TOKEN": "env"})
    assert job_secrets([TOKEN], store).values == {"TOKEN": "env"}
