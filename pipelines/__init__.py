"""The `.ci.yaml` spec: types, parsing with positions, linting, filtering, planning, compiling.

Pure: imports neither Kubernetes nor the network, so `ferry lint` and `ferry render` work anywhere.
"""
