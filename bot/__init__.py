"""Discord image-generation bot: a Discord-free core (config, db, providers, jobs, media) plus thin cogs."""
