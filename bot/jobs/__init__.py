"""Jobs: persisted rows, the service that creates them and the runner that drives them."""
