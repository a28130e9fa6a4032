"""ML ("System 2") service: datasets, AutoML, symbolic regression, causal inference, verification."""
