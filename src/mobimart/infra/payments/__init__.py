"""Payment gateways: the adapter interface, RSA2 signing, and a sandbox provider for tests."""
