"""``actionrelay console``: a small web app for the people who run actionrelay.

Beside ``cli`` at the top layer: it may import every layer below (catalog, broker,
http, observability, settings, core), and nothing imports it but ``cli``.
"""
