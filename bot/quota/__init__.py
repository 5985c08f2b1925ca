"""Per-user credit quotas: pure policy (periods, limits, costs) and the service that reserves and refunds."""
