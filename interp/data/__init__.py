"""Prompt builders for the analyzers (boxes for entity tracking, ...)."""
