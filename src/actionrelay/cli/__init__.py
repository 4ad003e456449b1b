"""Operator commands: ``actionrelay`` and its subcommands (run, actions, publish, dlq,
demo, asyncapi) and their terminal output. The only place that reads the
environment, configures logging and starts the event loop.

May import everything.
"""
