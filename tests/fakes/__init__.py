"""Loopback fakes for what CI cannot reach: Discord (gateway + REST + CDN) and the image APIs."""
