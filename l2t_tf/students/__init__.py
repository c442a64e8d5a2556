"""Student networks (the task models S_theta)."""
