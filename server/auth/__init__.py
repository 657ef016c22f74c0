"""Accounts and access: passwords, one-time codes, sessions, invitations, throttling, roles."""
