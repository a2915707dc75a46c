"""The step-log archive: every step's log, masked and gzipped, kept apart from the runs and
pods it came from, so that pruning them loses nothing.

`store` is the small protocol a storage implements (objects by name: put, get, list,
delete); `directory` and `s3` are the two implementations. `layout` names the objects,
`steps` writes and reads a step's log and its record, `retention` decides what to delete.
"""
