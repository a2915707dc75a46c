"""Benchmarks that print figures. Run each from the repository root as a module, for example
`python3 -m bench.local`, so `ci`, `webhooks` and `tests` import from this checkout (a script
path would put `bench/` first on `sys.path`, where `bench/webhooks.py` hides the package)."""
