"""What every service shares. Imports no service (enforced by import-linter)."""
