"""Discord image-generation bot: a Discord-free core (config, db, providers, jobs, media) plus thin cogs."""

__version__ = "0.2.0"
