"""Everything a user reads: texts, embeds and the Discord-side publisher."""
