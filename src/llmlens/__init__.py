"""llmlens: LLM observability. The SDK facade lands here."""
