"""The Python SDK: context, spans, decorators, the batch exporter and provider integrations.

The public names are re-exported by `llmlens`; everything here is private.
"""
