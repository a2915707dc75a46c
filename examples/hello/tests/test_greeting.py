import unittest

from hello import greeting


class GreetingTest(unittest.TestCase):
    def test_greets_by_name(self) -> None:
        self.assertEqual(greeting("Ferry"), "Hello, Ferry!")

    def test_blank_name_greets_the_world(self) -> None:
        self.assertEqual(greeting("  "), "Hello, world!")
