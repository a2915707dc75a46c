import unittest

from calculator import add, average


class CalculatorTest(unittest.TestCase):
    def test_add(self) -> None:
        self.assertEqual(add(2, 3), 5)

    def test_average(self) -> None:
        self.assertEqual(average([1.0, 2.0, 3.0]), 2.0)


if __name__ == "__main__":
    unittest.main()
