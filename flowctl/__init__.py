"""flowctl: CRM workflow automation as code."""

__version__ = "0.1.0"
