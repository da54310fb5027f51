"""Provider integrations: each patches one client library so its calls become `llm` spans."""
