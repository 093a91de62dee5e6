"""psyrun-plugin-example: a JSON-lines store registered as a psyrun plugin."""
