"""The action catalog: loading action files from the actions directory and reloading
them while the worker runs.

May import ``core`` and ``limits`` (endpoints.yaml lives beside the action files).
"""
