from hello import greeting


def test_greets_by_name() -> None:
    assert greeting("Ferry") == "Hello, Ferry!"


def test_blank_name_greets_the_world() -> None:
    assert greeting("  ") == "Hello, world!"
