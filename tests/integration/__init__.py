"""Integration tests: SQLite files, migrations, races between processes, the CLI."""
