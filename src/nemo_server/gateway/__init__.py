"""The API gateway: the only public door (users, JWT and API keys, rate limits, routing)."""
