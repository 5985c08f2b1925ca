"""Image API clients behind one protocol, plus the per-model input catalogue."""
