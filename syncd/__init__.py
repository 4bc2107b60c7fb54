"""syncd: keep a local folder mirrored to Anthropic's Files API."""

__version__ = "0.1.0"
