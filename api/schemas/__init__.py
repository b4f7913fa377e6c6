"""Request and response bodies, one module per router; ``common`` holds the types several share."""
