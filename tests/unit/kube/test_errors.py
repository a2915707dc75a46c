"""The Kubernetes adapter's one error tree: everything `ci.kube` raises for the cluster's
sake is a `KubernetesError`, and each leaf stays apart from the ones callers answer
differently (a refusal is not an outage; a gone object is not a refusal)."""

from __future__ import annotations

import inspect

from ci.forges.errors import ForgeError
from ci.kube import errors
from ci.kube.binding_keys import keys_of


def test_every_error_of_the_adapter_is_a_kubernetes_error_and_no_forge_error() -> None:
    classes = [value for _, value in inspect.getmembers(errors, inspect.isclass)
               if issubclass(value, Exception)]
    assert len(classes) == len(errors.__all__)
    for kind in classes:
        assert issubclass(kind, errors.KubernetesError)
        assert not issubclass(kind, ForgeError)


def test_leaves_callers_answer_differently_do_not_catch_each_other() -> None:
    refused = errors.ApiRefusedError("403 Forbidden", status=403)
    assert not isinstance(refused, errors.ApiUnavailableError)
    for gone in (errors.ObjectGoneError("x"), errors.PatchConflictError("x"),
                 errors.CredentialsError("x"), errors.LogUnavailableError("x")):
        assert not isinstance(gone, errors.ApiRefusedError | errors.ApiUnavailableError)


def test_a_broken_binding_key_is_a_refusal_the_receiver_answers() -> None:
    try:
        keys_of({"key": "not base64!"}, where="Secret ferry-system/ferry-binding-key")
    except errors.ApiRefusedError as error:
        assert isinstance(error, errors.BindingKeyError)
        assert error.status == 500
        assert "ferry-system/ferry-binding-key" in str(error)
    else:
        raise AssertionError("a key that is not base64 was accepted")
