"""crimecast.models."""
