"""crimecast.cards."""
