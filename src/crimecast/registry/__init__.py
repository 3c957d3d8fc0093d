"""crimecast.registry."""
