"""Operations: metrics, the health/metrics HTTP endpoint, logging, startup checks and the live model list."""
