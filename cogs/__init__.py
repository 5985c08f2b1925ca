"""Thin slash-command cogs: Discord input in, service calls, rendered output."""
