"""Wallets, the double-entry ledger, payment methods, refunds and merchant settlement."""
