"""The configuration: typed models per section, loading with line numbers, checks, schema."""
