"""Routers of the gateway: its own endpoints, then the proxy to every service."""
