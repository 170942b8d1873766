"""How and where ordo's functions run outside AWS."""
