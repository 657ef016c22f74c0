"""Database access: engine and transactions, models, migrations."""
