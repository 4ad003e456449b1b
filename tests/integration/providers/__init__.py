"""Each provider recipe of examples/providers/ against a local stand-in of the provider."""
