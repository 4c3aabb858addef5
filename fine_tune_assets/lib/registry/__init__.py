"""The registry (a DuckDB file): its one schema, short-lived connections, the hash-chained audit ledger,
id resolution (id, prefix, `latest`, stage name), stage and erasure tables, and read queries."""
