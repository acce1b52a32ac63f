"""API Gateway's data plane for the REST APIs deployed to the emulator."""
