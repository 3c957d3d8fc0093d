"""crimecast.features."""
