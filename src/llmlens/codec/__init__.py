"""Bytes <-> model: native JSON/NDJSON events, OTLP protobuf and JSON, the article's log lines."""
