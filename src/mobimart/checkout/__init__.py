"""Cart, addresses, checkout and orders."""
