"""ordo's local cloud: runs template.yaml on one machine, without Docker."""
