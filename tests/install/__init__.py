"""The project installed from its wheelhouse, as operators, relays and the offline team do."""
