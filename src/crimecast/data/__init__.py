"""crimecast.data."""
