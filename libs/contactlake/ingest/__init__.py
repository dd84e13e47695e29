"""Landing -> bronze: source specs, line parsing with reasons, the ingested-files registry."""
