"""Configuration models and the YAML loader."""
